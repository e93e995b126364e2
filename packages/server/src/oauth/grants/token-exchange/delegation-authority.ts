import type { ServerContext } from '../../../context.ts';
import type { ResourceWithActions } from '../../../resources/registry.ts';
import { findLiveDelegation, type Delegation } from '../../delegation.ts';
import { InvalidRequest } from '../../errors.ts';
import type { Subject } from './subject-token.ts';

/** The delegation an exchange acts under, and what it allows. */
export interface ExchangeAuthority {
  /** Client ids for the issued `act` claim, the new actor first (RFC 8693 §4.1). */
  actorChain: string[];
  /** Upper bound of the issued scope: the subject token's scope ∩ the delegation's scope. */
  bound: Set<string>;
  /**
   * The live delegation behind the exchange. When `handOff` is true it is the parent agent's
   * delegation, and the caller records a new delegation for the sub-agent under it.
   */
  delegation: Delegation;
  handOff: boolean;
}

/**
 * Finds the person's live delegation that lets `actorId`, the agent that becomes the actor, act.
 * authorizeNewActor has already checked that the current holder authorized any hand-off. There
 * are three cases:
 *
 * 1. The subject token is the person's own (no actor): the person must have consented to this
 *    agent for this resource, and that consent delegation is reused.
 * 2. The new actor is already the subject token's current actor: the exchange only narrows the
 *    token, under the delegation the subject token names.
 * 3. Another agent is the subject token's current actor and hands the token on to the new actor,
 *    which is nested in front of the chain, up to `maxDelegationChainDepth` actors.
 *
 * A missing or revoked delegation makes the subject token unacceptable, so every failure is
 * `invalid_request` (RFC 8693 §2.2.2).
 */
export async function findExchangeAuthority(ctx: ServerContext, actorId: string, subject: Subject, resource: ResourceWithActions, requested: string[] | undefined): Promise<ExchangeAuthority> {
  const current = subject.actorChain[0];
  if (current === undefined) return consentAuthority(ctx, actorId, subject, resource, requested);

  const delegation = await subjectDelegation(ctx, subject, current, resource);
  if (current === actorId) return { actorChain: subject.actorChain, bound: intersect(subject.scope, delegation), delegation, handOff: false };

  // RFC 8693 §4.1: the new actor goes in front, and the earlier actors nest inside it.
  if (subject.actorChain.includes(actorId)) throw new InvalidRequest(`The agent ${actorId} already appears in the subject_token's actor chain, and a chain may not loop back.`);
  const actorChain = [actorId, ...subject.actorChain];
  const maxDepth = ctx.config.maxDelegationChainDepth;
  if (actorChain.length > maxDepth) throw new InvalidRequest(`The delegation chain would have ${actorChain.length} actors, but this server allows at most ${maxDepth}.`);

  return { actorChain, bound: intersect(subject.scope, delegation), delegation, handOff: true };
}

async function consentAuthority(ctx: ServerContext, actorId: string, subject: Subject, resource: ResourceWithActions, requested: string[] | undefined): Promise<ExchangeAuthority> {
  // A person's token issued under a grant that was revoked since is no longer acceptable.
  if (subject.delegationId !== undefined) {
    const own = await findLiveDelegation(ctx, subject.delegationId);
    if (own === undefined || own.user_id !== subject.userId) throw new InvalidRequest('The grant behind the subject_token was revoked.');
  }

  const consents = await ctx.db
    .selectFrom('delegations')
    .selectAll()
    .where('tenant_id', '=', ctx.tenantId)
    .where('user_id', '=', subject.userId)
    .where('client_id', '=', actorId)
    .where('resource_id', '=', resource.id)
    .where('source', '=', 'consent')
    .where('revoked_at', 'is', null)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
  const delegation = widestFor(consents, requested ?? (subject.scope === undefined ? undefined : [...subject.scope]));
  if (delegation === undefined) {
    throw new InvalidRequest(`The person has not delegated to this agent for ${resource.identifier}. The person must consent at the authorization endpoint first.`);
  }

  return { actorChain: [actorId], bound: intersect(subject.scope, delegation), delegation, handOff: false };
}

/** Finds the live delegation a delegated subject token names, which must belong to its person, current actor and resource. */
async function subjectDelegation(ctx: ServerContext, subject: Subject, actor: string, resource: ResourceWithActions): Promise<Delegation> {
  if (subject.delegationId === undefined) throw new InvalidRequest('The subject_token has an actor but no "delegation_id" claim.');

  const delegation = await findLiveDelegation(ctx, subject.delegationId);
  if (delegation === undefined || delegation.user_id !== subject.userId || delegation.client_id !== actor || delegation.resource_id !== resource.id) {
    throw new InvalidRequest('The delegation behind the subject_token was revoked or does not match it.', { detail: `delegation ${subject.delegationId} is not live for ${subject.userId}, ${actor} and ${resource.id}` });
  }
  return delegation;
}

/** Picks the consent covering most of the requested scopes, the newest on a tie, or the newest when no scope is requested. */
function widestFor(consents: Delegation[], requested: string[] | undefined): Delegation | undefined {
  if (requested === undefined) return consents[0];

  let best: Delegation | undefined;
  let bestCount = -1;
  for (const consent of consents) {
    const scopes = new Set(consent.scope.split(' '));
    const count = requested.filter((scope) => scopes.has(scope)).length;
    if (count > bestCount) {
      best = consent;
      bestCount = count;
    }
  }
  return best;
}

function intersect(subjectScope: Set<string> | undefined, delegation: Delegation): Set<string> {
  const delegated = delegation.scope.split(' ').filter((scope) => scope !== '');
  return new Set(subjectScope === undefined ? delegated : delegated.filter((scope) => subjectScope.has(scope)));
}
