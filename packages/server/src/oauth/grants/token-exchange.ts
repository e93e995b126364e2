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
import { tokenTypeFor, type DpopBinding } from '../dpop/token-request.ts';
import { checkMayAct } from './token-exchange/actor-chain.ts';
import { verifyActorToken } from './token-exchange/actor-token.ts';
import { findExchangeAuthority, type ExchangeAuthority } from './token-exchange/delegation-authority.ts';
import { verifySubjectToken, type Subject } from './token-exchange/subject-token.ts';
import { TOKEN_TYPES, checkRequestedTokenType, parseTokenType } from './token-exchange/token-types.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = TOKEN_TYPES.access_token;

/** RFC 8693 §2.2.1: `scope` may be left out when it equals the requested scope. */
export type TokenExchangeResponse = Omit<TokenResponse, 'scope'> & { scope?: string };

/**
 * RFC 8693 §2: the calling agent trades a subject token that represents a person for an access
 * token that acts for that person, with the agent as `act`. The person must have a live
 * delegation to the agent, or to the agent that hands its token on. The result is for the
 * subject token's resource only, its scope only shrinks, and it never outlives the subject token.
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

  const subject = await verifySubjectToken(ctx, client, subjectToken, subjectType);
  if (actorToken !== undefined && actorType !== undefined) await verifyActorToken(ctx, client, actorToken, actorType);

  const resource = await resolveTarget(ctx, form, subject);
  // RFC 8693 §4.4: the calling agent becomes the actor, so it is the party may_act must name.
  checkMayAct(subject.mayAct, client.client_id, ctx.config.issuer);
  if (subject.scope !== undefined && requested?.some((scope) => !subject.scope?.has(scope)) === true) {
    throw new InvalidScope('The requested scope exceeds the subject token\'s scope, and token exchange can only narrow it.');
  }

  const authority = await findExchangeAuthority(ctx, client, subject, resource, requested);
  if (requested?.some((scope) => !authority.bound.has(scope)) === true) throw new InvalidScope('The requested scope exceeds what the person delegated to this agent.');
  const granted = await grantScope(ctx, { userId: subject.userId, agentId: client.client_id }, resource, requested ?? [...authority.bound], authority.bound);

  const remaining = subject.expiresAt - nowSeconds();
  if (remaining <= 0) throw new InvalidRequest('The subject_token has expired.');
  const delegation = authority.handOff ? await recordHandOff(ctx, client, subject, resource, authority, granted) : authority.delegation;

  const { token, expiresIn } = await issueAuditedAccessToken(ctx, {
    grantType: TOKEN_EXCHANGE_GRANT,
    subject: subject.userId,
    userId: subject.userId,
    clientId: client.client_id,
    actor: client.client_id,
    actorChain: authority.actorChain,
    audience: resource.identifier,
    scope: granted.scope,
    lifetimeSeconds: Math.min(resource.access_token_ttl_seconds, remaining),
    delegationId: delegation.id,
    dpopJkt: dpop?.jkt,
    reasons: {
      ...grantReasons(granted.decisions),
      subject_token_type: TOKEN_TYPES[subject.type],
      subject_jti: subject.jti,
      actor_chain: authority.actorChain,
      ...(authority.handOff ? { parent_delegation_id: authority.delegation.id } : {}),
    },
  });

  const scope = granted.scope.join(' ');
  const sameAsRequested = requested !== undefined && requested.length === granted.scope.length && requested.every((value) => granted.scope.includes(value));
  return { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: tokenTypeFor(dpop), expires_in: expiresIn, ...(sameAsRequested ? {} : { scope }) };
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

/**
 * Records the sub-agent's own delegation when an agent hands its token on, so the gateway,
 * which checks that the token's delegation belongs to its outermost actor, accepts it. The
 * audit entry names the parent delegation.
 */
async function recordHandOff(ctx: ServerContext, client: Client, subject: Subject, resource: ResourceWithActions, authority: ExchangeAuthority, granted: GrantedScope): Promise<Delegation> {
  return ctx.db.transaction().execute(async (trx) => {
    const delegation = await createDelegation({ db: trx, tenantId: ctx.tenantId }, { userId: subject.userId, clientId: client.client_id, resourceId: resource.id, scope: granted.scope, source: 'token_exchange', parentDelegationId: authority.delegation.id });
    await ctx.audit(
      {
        event: 'delegation.created',
        user: subject.userId,
        agent: client.client_id,
        target: { resource: resource.identifier, delegation_id: delegation.id, scope: granted.scope.join(' ') },
        outcome: { decision: 'allowed' },
        reason: { token_exchange: true, parent_delegation_id: authority.delegation.id, actor_chain: authority.actorChain },
      },
      trx,
    );
    return delegation;
  });
}
