import type { ActorClaim } from '../../access-token.ts';
import { InvalidRequest } from '../../errors.ts';

/** A chain longer than this is malformed whatever the configured limit, which is at most 10. */
const MAX_PARSED_ACTORS = 16;

/**
 * Flattens a nested RFC 8693 §4.1 `act` claim into client ids, the current actor first and
 * the earliest last. An absent claim is an empty chain. A level without a string `sub` makes
 * the token unacceptable, so it is `invalid_request` (RFC 8693 §2.2.2).
 */
export function readActorChain(act: unknown, tokenName: string): string[] {
  const chain: string[] = [];
  let level = act;

  while (level !== undefined) {
    if (chain.length >= MAX_PARSED_ACTORS) throw new InvalidRequest(`The ${tokenName} has too deeply nested "act" claims.`);
    if (typeof level !== 'object' || level === null || typeof (level as ActorClaim).sub !== 'string') {
      throw new InvalidRequest(`The ${tokenName} has a malformed "act" claim. Each level needs a string "sub".`);
    }
    chain.push((level as ActorClaim).sub);
    level = (level as ActorClaim).act;
  }
  return chain;
}

/**
 * Enforces the subject token's `may_act` claim (RFC 8693 §4.4) when it has one: the party
 * becoming the actor must be the one it names, and a named issuer must be this server.
 */
export function checkMayAct(mayAct: unknown, actor: string, issuer: string): void {
  if (mayAct === undefined) return;

  if (typeof mayAct !== 'object' || mayAct === null || typeof (mayAct as { sub?: unknown }).sub !== 'string') {
    throw new InvalidRequest('The subject_token has a malformed "may_act" claim. It needs a string "sub".');
  }
  const { sub, iss } = mayAct as { sub: string; iss?: unknown };
  if (sub !== actor || (iss !== undefined && iss !== issuer)) {
    throw new InvalidRequest(`The subject_token's "may_act" claim does not name ${actor}, so ${actor} may not act with it.`);
  }
}
