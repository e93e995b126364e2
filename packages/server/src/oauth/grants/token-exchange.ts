import type { ServerContext } from '../../context.ts';
import type { Client } from '../../agents/clients.ts';
import { nowSeconds } from '../../store/ids.ts';
import type { ResourceWithActions } from '../../resources/registry.ts';
import { repeatedParam, requiredParam, singleParam, type FormBody } from '../../http/form.ts';
import { createDelegation, type Delegation } from '../delegation.ts';
import { InvalidRequest, InvalidScope, InvalidTarget, UnauthorizedClient } from '../errors.ts';
import { resolveResource } from '../resource-indicator.ts';
import { grantReasons, grantScope, parseScope, type GrantedScope } from '../scope.ts';
import { issueAuditedAccessToken, type TokenResponse } from '../token-response.ts';
import type { DpopBinding } from '../dpop/token-request.ts';
import { authorizeNewActor, type HandOffAuthorization } from './token-exchange/actor-chain.ts';
import { verifyActorToken } from './token-exchange/actor-token.ts';
import { findExchangeAuthority, type ExchangeAuthority } from './token-exchange/delegation-authority.ts';
import { rotateSubjectRefreshToken } from './token-exchange/presented-refresh-token.ts';
import { verifySubjectToken, type Subject } from './token-exchange/subject-token.ts';
import { TOKEN_TYPES, checkRequestedTokenType, parseTokenType } from './token-exchange/token-types.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = TOKEN_TYPES.access_token;

/** RFC 8693 §2.2.1: `scope` may be left out when it equals the requested scope. */
export type TokenExchangeResponse = Omit<TokenResponse, 'scope'> & { scope?: string };

/**
 * RFC 8693 §2: the calling agent trades a subject token that represents a person for an access
 * token that acts for that person. The new actor is the calling agent, or the sub-agent that the
 * calling agent names with an actor token when it hands its own token on. Only the subject
 * token's current holder may hand it on, or the agent its `may_act` claim names
 * (authorizeNewActor). The person must have a live delegation to the new actor, or to the agent
 * that hands its token on. The result is for the subject token's resource only, its scope only
 * shrinks, and it never outlives the subject token. A DPoP-bound subject token, or the calling
 * agent's own bound actor token, needs a proof by its key. A refresh token as subject token is
 * rotated: it is spent, and the response carries its successor.
 */
export async function tokenExchangeGrant(ctx: ServerContext, client: Client, form: FormBody, dpop?: DpopBinding): Promise<TokenExchangeResponse> {
  if (client.kind !== 'agent') throw new UnauthorizedClient('Only agents may exchange tokens.');

  const subjectToken = requiredParam(form, 'subject_token');
  const subjectType = parseTokenType('subject_token_type', requiredParam(form, 'subject_token_type'));
  const actorToken = singleParam(form, 'actor_token');
  const actorTokenType = singleParam(form, 'actor_token_type');
  // RFC 8693 §2.1: actor_token_type is required exactly when actor_token is present.
  if ((actorToken === undefined) !== (actorTokenType === undefined)) throw new InvalidRequest('actor_token and actor_token_type must be sent together.');
  const actorType = actorTokenType === undefined ? undefined : parseTokenType('actor_token_type', actorTokenType);
  checkRequestedTokenType(singleParam(form, 'requested_token_type'));
  const requested = parseScope(singleParam(form, 'scope'));

  const subject = await verifySubjectToken(ctx, client, subjectToken, subjectType, dpop);
  const named = actorToken !== undefined && actorType !== undefined ? await verifyActorToken(ctx, client, actorToken, actorType, dpop) : undefined;
  const actorId = named?.clientId ?? client.client_id;

  const resource = await resolveTarget(ctx, form, subject);
  const handOffBy = authorizeNewActor({ actorChain: subject.actorChain, mayAct: subject.mayAct, requester: client.client_id, newActor: actorId, issuer: ctx.config.issuer });
  if (subject.scope !== undefined && requested?.some((scope) => !subject.scope?.has(scope)) === true) {
    throw new InvalidScope('The requested scope exceeds the subject token\'s scope, and token exchange can only narrow it.');
  }

  const authority = await findExchangeAuthority(ctx, actorId, subject, resource, requested);
  if (requested?.some((scope) => !authority.bound.has(scope)) === true) throw new InvalidScope('The requested scope exceeds what the person delegated to this agent.');
  const granted = await grantScope(ctx, { userId: subject.userId, agentId: actorId }, resource, requested ?? [...authority.bound], authority.bound);

  const remaining = subject.expiresAt - nowSeconds();
  if (remaining <= 0) throw new InvalidRequest('The subject_token has expired.');
  // Spent only now that every check has passed, so a rejected request leaves the refresh token usable.
  const refreshToken = subject.refreshToken === undefined ? undefined : await rotateSubjectRefreshToken(ctx, subject.refreshToken, dpop);
  const handOff = { requester: client.client_id, authorizedBy: handOffBy };
  const delegation = authority.handOff ? await recordHandOff(ctx, actorId, subject, resource, authority, granted, handOff) : authority.delegation;

  // A token for a sub-agent that the caller named belongs to the sub-agent. It is bound to the
  // sub-agent's DPoP key when the actor token is (RFC 9449 §6.1). Otherwise it is a bearer
  // token, like the actor token that the caller already has.
  const boundJkt = actorId === client.client_id ? dpop?.jkt : named?.boundJkt;
  const { token, expiresIn } = await issueAuditedAccessToken(ctx, {
    grantType: TOKEN_EXCHANGE_GRANT,
    subject: subject.userId,
    userId: subject.userId,
    clientId: actorId,
    actor: actorId,
    actorChain: authority.actorChain,
    audience: resource.identifier,
    scope: granted.scope,
    lifetimeSeconds: Math.min(resource.access_token_ttl_seconds, remaining),
    delegationId: delegation.id,
    dpopJkt: boundJkt,
    reasons: {
      ...grantReasons(granted.decisions),
      subject_token_type: TOKEN_TYPES[subject.type],
      subject_jti: subject.jti,
      actor_chain: authority.actorChain,
      ...(authority.handOff ? { parent_delegation_id: authority.delegation.id, authorized_by: handOffBy, requested_by: client.client_id } : {}),
    },
  });

  const scope = granted.scope.join(' ');
  const sameAsRequested = requested !== undefined && requested.length === granted.scope.length && requested.every((value) => granted.scope.includes(value));
  return {
    access_token: token,
    issued_token_type: ACCESS_TOKEN_TYPE,
    // RFC 9449 §5: DPoP exactly when the issued token is bound to a key.
    token_type: boundJkt === undefined ? 'Bearer' : 'DPoP',
    expires_in: expiresIn,
    ...(sameAsRequested ? {} : { scope }),
    // RFC 8693 §2.2.1 allows a refresh token in the response; here it is the rotated subject token's successor.
    ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
  };
}

/**
 * Resolves the one resource the token is for from the RFC 8693 §2.1 `resource` and `audience`
 * parameters, both absolute resource identifiers here. Mandate issues one audience per token,
 * so several distinct values are `invalid_target`, and the target must be the subject token's.
 */
async function resolveTarget(ctx: ServerContext, form: FormBody, subject: Subject): Promise<ResourceWithActions> {
  const targets = [...new Set([...repeatedParam(form, 'resource'), ...repeatedParam(form, 'audience')])];
  if (targets.length > 1) throw new InvalidTarget(`Each token here is for one audience, but the resource and audience parameters name ${targets.length} different targets.`);

  const target = targets[0] ?? subject.audience;
  if (target === undefined) throw new InvalidTarget('An ID token names no resource. Send the resource parameter.');
  const resource = await resolveResource(ctx, [target]);

  if (subject.audience !== undefined && resource.identifier !== subject.audience) {
    throw new InvalidTarget('Token exchange can only narrow: the resource must be the subject token\'s audience.');
  }
  return resource;
}

/** The calling agent of a hand-off, and how the current holder authorized it. */
interface HandOff {
  requester: string;
  authorizedBy: HandOffAuthorization | undefined;
}

/**
 * Records the sub-agent's own delegation when a token is handed on, so the gateway, which checks
 * that the token's delegation belongs to its outermost actor, accepts it. The audit entry names
 * the parent delegation, the calling agent and how the holder authorized the hand-off.
 */
async function recordHandOff(ctx: ServerContext, actorId: string, subject: Subject, resource: ResourceWithActions, authority: ExchangeAuthority, granted: GrantedScope, handOff: HandOff): Promise<Delegation> {
  return ctx.db.transaction().execute(async (trx) => {
    const delegation = await createDelegation({ db: trx, tenantId: ctx.tenantId }, { userId: subject.userId, clientId: actorId, resourceId: resource.id, scope: granted.scope, source: 'token_exchange', parentDelegationId: authority.delegation.id });
    await ctx.audit(
      {
        event: 'delegation.created',
        user: subject.userId,
        agent: actorId,
        target: { resource: resource.identifier, delegation_id: delegation.id, scope: granted.scope.join(' ') },
        outcome: { decision: 'allowed' },
        reason: { token_exchange: true, parent_delegation_id: authority.delegation.id, actor_chain: authority.actorChain, authorized_by: handOff.authorizedBy, requested_by: handOff.requester },
      },
      trx,
    );
    return delegation;
  });
}
