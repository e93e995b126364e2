import type { ServerContext } from '../../context.ts';
import type { Client } from '../../agents/clients.ts';
import { findUser } from '../../identity/users.ts';
import { nowSeconds } from '../../store/ids.ts';
import { repeatedParam, requiredParam, singleParam, type FormBody } from '../../http/form.ts';
import { verifyOwnAccessToken, type AccessTokenClaims } from '../access-token.ts';
import { createDelegation } from '../delegation.ts';
import { InvalidRequest, InvalidScope, InvalidTarget, UnauthorizedClient } from '../errors.ts';
import { resolveResource } from '../resource-indicator.ts';
import { grantReasons, grantScope, parseScope } from '../scope.ts';
import { issueAuditedAccessToken, type TokenResponse } from '../token-response.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/**
 * RFC 8693 §2: an agent trades a person's access token (the subject) and its own access token
 * (the actor) for a token that acts for the person. The result is for the subject token's
 * resource only, its scope can only shrink, and it never outlives the subject token.
 */
export async function tokenExchangeGrant(ctx: ServerContext, client: Client, form: FormBody): Promise<TokenResponse> {
  if (client.kind !== 'agent') throw new UnauthorizedClient('Only agents may exchange tokens.');

  const subjectToken = requiredParam(form, 'subject_token');
  const subjectTokenType = requiredParam(form, 'subject_token_type');
  const actorToken = singleParam(form, 'actor_token');
  const actorTokenType = singleParam(form, 'actor_token_type');
  const requestedType = singleParam(form, 'requested_token_type');
  const requested = parseScope(singleParam(form, 'scope'));
  const resources = repeatedParam(form, 'resource');
  const audiences = repeatedParam(form, 'audience');

  if (subjectTokenType !== ACCESS_TOKEN_TYPE) throw new InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}.`);
  // RFC 8693 §2.1: actor_token_type is required exactly when actor_token is present.
  if ((actorToken === undefined) !== (actorTokenType === undefined)) throw new InvalidRequest('actor_token and actor_token_type must be sent together.');
  if (actorTokenType !== undefined && actorTokenType !== ACCESS_TOKEN_TYPE) throw new InvalidRequest(`actor_token_type must be ${ACCESS_TOKEN_TYPE}.`);
  if (requestedType !== undefined && requestedType !== ACCESS_TOKEN_TYPE) throw new InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}.`);

  const subject = await verifySubject(ctx, subjectToken);
  if (actorToken !== undefined) await verifyActor(ctx, actorToken, client);

  const targets = [...resources, ...audiences];
  const resource = await resolveResource(ctx, targets.length === 0 ? [subject.aud] : targets);
  if (resource.identifier !== subject.aud) throw new InvalidTarget('A token exchange can only narrow: the resource must be the subject token\'s audience.');

  const bound = new Set(subject.scope.split(' '));
  if (requested?.some((scope) => !bound.has(scope)) === true) throw new InvalidScope('The requested scope exceeds the subject token\'s scope.');
  const granted = await grantScope(ctx, { userId: subject.sub, agentId: client.client_id }, resource, requested ?? [...bound], bound);

  const remaining = subject.exp - nowSeconds();
  const lifetime = Math.min(resource.access_token_ttl_seconds, remaining);
  const delegation = await createDelegation(ctx, { userId: subject.sub, clientId: client.client_id, resourceId: resource.id, scope: granted.scope, source: 'token_exchange' });

  const { token, expiresIn } = await issueAuditedAccessToken(ctx, {
    grantType: TOKEN_EXCHANGE_GRANT,
    subject: subject.sub,
    userId: subject.sub,
    clientId: client.client_id,
    actor: client.client_id,
    audience: resource.identifier,
    scope: granted.scope,
    lifetimeSeconds: lifetime,
    delegationId: delegation.id,
    reasons: { ...grantReasons(granted.decisions), subject_jti: subject.jti, subject_client_id: subject.client_id },
  });
  return { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: expiresIn, scope: granted.scope.join(' ') };
}

/** The subject must be a person's own access token, issued here, unexpired, for an active person. */
async function verifySubject(ctx: ServerContext, token: string): Promise<AccessTokenClaims> {
  let claims: AccessTokenClaims;
  try {
    claims = await verifyOwnAccessToken(ctx, token);
  } catch (error) {
    // RFC 8693 §2.2.2: an invalid subject token is invalid_request.
    throw new InvalidRequest('The subject_token is invalid or expired.', { detail: (error as Error).message, cause: error });
  }
  if (claims.act !== undefined) throw new InvalidRequest('The subject_token already carries an actor; delegation chains are not supported.');

  const user = await findUser(ctx, claims.sub);
  if (user === undefined || user.status !== 'active') throw new InvalidRequest('The subject_token does not belong to an active person.');
  return claims;
}

/** The actor token must be the calling agent's own token. */
async function verifyActor(ctx: ServerContext, token: string, client: Client): Promise<void> {
  let claims: AccessTokenClaims;
  try {
    claims = await verifyOwnAccessToken(ctx, token);
  } catch (error) {
    throw new InvalidRequest('The actor_token is invalid or expired.', { detail: (error as Error).message, cause: error });
  }
  if (claims.sub !== client.client_id || claims.act !== undefined) throw new InvalidRequest('The actor_token must be the calling agent\'s own access token.');
}
