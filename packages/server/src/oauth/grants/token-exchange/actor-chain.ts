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

/** The current holder's authorization of a hand-off: its actor_token naming the sub-agent, or `may_act`. */
export type HandOffAuthorization = 'holder' | 'may_act';

/** The parties of an exchange that decide who may become the actor. */
export interface ActorCandidates {
  /** The subject token's actors, the current one first; empty for a person's own token. */
  actorChain: string[];
  /** The subject token's raw `may_act` claim. */
  mayAct: unknown;
  /** The authenticated agent that calls the token endpoint. */
  requester: string;
  /** The agent that becomes the actor: the requester, or the sub-agent its actor_token names. */
  newActor: string;
  issuer: string;
}

/**
 * Enforces who may become the actor of the issued token. The new actor is the calling agent, or
 * the sub-agent that the calling agent names with that sub-agent's own token as actor_token
 * (RFC 8693 §2.1: the actor token identifies the acting party). A `may_act` claim must name the
 * new actor (RFC 8693 §4.4).
 *
 * When the new actor differs from the subject token's current actor, the token is handed on, and
 * the current holder must authorize that in one of two ways:
 *
 * - `holder`: the calling agent is the current actor and names the sub-agent by its actor_token.
 * - `may_act`: the subject token's `may_act` claim names the calling agent.
 *
 * Holding another agent's token is not enough, because a bearer token can be copied, and the
 * person consented to the holder, not to every client that obtains a copy. Every other hand-off makes the
 * subject token unacceptable, which is `invalid_request` (RFC 8693 §2.2.2). Returns how the
 * hand-off was authorized, or undefined when nothing is handed on.
 */
export function authorizeNewActor(candidates: ActorCandidates): HandOffAuthorization | undefined {
  const { actorChain, mayAct, requester, newActor, issuer } = candidates;
  checkMayAct(mayAct, newActor, issuer);
  const current = actorChain[0];

  if (newActor !== requester) {
    if (current === undefined) {
      throw new InvalidRequest(`The actor_token names the agent ${newActor}, but the subject_token has no actor that could hand it on. Send the calling agent's own access token as actor_token, or none.`);
    }
    if (current !== requester) {
      throw new InvalidRequest(`The actor_token names the agent ${newActor}, which hands the subject_token on. Only the subject_token's current actor (${current}) may do that.`);
    }
    return 'holder';
  }

  if (current === undefined || current === requester) return undefined;
  // checkMayAct above has already required a present may_act to name the requester.
  if (mayAct !== undefined) return 'may_act';
  throw new InvalidRequest(
    `The subject_token's current actor is ${current}, so only ${current} may hand it on to ${requester}, by naming ${requester} with its own access token as actor_token. Otherwise the subject_token's "may_act" claim must name ${requester}.`,
  );
}
