import type { DpopBinding } from '../../dpop/token-request.ts';
import { InvalidRequest } from '../../errors.ts';

export type ExchangedTokenParameter = 'subject_token' | 'actor_token';

/**
 * Reads the DPoP key thumbprint from the `cnf` claim (RFC 7800 §3.1, RFC 9449 §6.1) of a
 * subject or actor access token. A `cnf` without a string `jkt` names a confirmation method
 * Mandate cannot check, so the token is unacceptable (RFC 8693 §2.2.2) instead of unbound.
 */
export function boundKeyThumbprint(cnf: unknown, parameter: ExchangedTokenParameter): string | undefined {
  if (cnf === undefined) return undefined;
  const jkt = typeof cnf === 'object' && cnf !== null ? (cnf as { jkt?: unknown }).jkt : undefined;
  if (typeof jkt !== 'string') throw new InvalidRequest(`The ${parameter} has a "cnf" claim without a DPoP key thumbprint ("jkt"), which this server cannot check.`);
  return jkt;
}

/**
 * Requires the token request's DPoP proof to be signed by the key that a subject or actor
 * token is bound to. A DPoP-bound token is sender-constrained: only the holder of its private
 * key may use it (RFC 9449 §1), and the party that consumes it must check the proof's key
 * against `cnf.jkt` (RFC 9449 §4.3 check 12, §7). RFC 8693 §2.2 leaves the validation of
 * subject and actor tokens to the authorization server, and Mandate consumes them here, so it
 * applies the same rule. Without it, anyone who copied a bound token could trade it for a
 * fresh one, bound to their own key or to none. The token endpoint has already verified the
 * proof itself (RFC 9449 §4.3), so only the thumbprints are compared here. A failure makes the
 * token unacceptable, which is `invalid_request` (RFC 8693 §2.2.2).
 */
export function requireProofOfPossession(boundJkt: string | null | undefined, dpop: DpopBinding | undefined, parameter: ExchangedTokenParameter): void {
  if (boundJkt === null || boundJkt === undefined) return;

  if (dpop === undefined) {
    throw new InvalidRequest(`The ${parameter} is bound to a DPoP key. Send a DPoP proof signed with that key in the DPoP header.`);
  }
  if (dpop.jkt !== boundJkt) {
    throw new InvalidRequest(`The ${parameter} is bound to a DPoP key other than the one that signed the DPoP proof. Sign the proof with the key the token is bound to.`);
  }
}
