import type { IncomingHttpHeaders } from 'node:http';
import type { ServerContext } from '../../context.ts';
import type { Client } from '../../agents/clients.ts';
import { InvalidDpopProof, InvalidGrant } from '../errors.ts';
import { verifyDpopProof } from './proof.ts';

/** The key a token request proved possession of; tokens issued for it are bound to it. */
export interface DpopBinding {
  /** RFC 7638 SHA-256 thumbprint of the key, the `cnf.jkt` of bound access tokens. */
  jkt: string;
}

/**
 * Verifies the DPoP proof of a token request (RFC 9449 §5) and returns the key it proves, or
 * undefined when the request has none. A client registered with `require_dpop` must send one.
 */
export async function dpopBindingOfTokenRequest(ctx: ServerContext, headers: IncomingHttpHeaders, client: Client): Promise<DpopBinding | undefined> {
  if (headers.dpop === undefined) {
    if (client.require_dpop === 1) throw new InvalidDpopProof(`The client ${client.client_id} must send a DPoP proof with every token request.`, 'token_endpoint');
    return undefined;
  }

  const proof = await verifyDpopProof(ctx, { header: headers.dpop, method: 'POST', url: `${ctx.config.issuer}/token`, site: 'token_endpoint' });
  return { jkt: proof.jkt };
}

/**
 * Requires the request's DPoP key to be the one a code or refresh token is bound to
 * (RFC 9449 §5, §10). Callers check this before spending the code or token, so that a thief
 * without the key cannot burn it.
 */
export function requireBoundKey(boundJkt: string | null | undefined, binding: DpopBinding | undefined, what: string): void {
  if (boundJkt === null || boundJkt === undefined) return;
  if (binding === undefined) throw new InvalidGrant(`The ${what} is bound to a DPoP key; send a DPoP proof signed with that key.`);
  if (binding.jkt !== boundJkt) throw new InvalidGrant(`The ${what} is bound to a different DPoP key than the one that signed the proof.`);
}

/** RFC 9449 §5: the `token_type` of a token response. */
export function tokenTypeFor(binding: DpopBinding | undefined): 'Bearer' | 'DPoP' {
  return binding === undefined ? 'Bearer' : 'DPoP';
}
