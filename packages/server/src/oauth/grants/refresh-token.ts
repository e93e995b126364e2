import type { ServerContext } from '../../context.ts';
import type { Client } from '../../agents/clients.ts';
import { findUser } from '../../identity/users.ts';
import { findResourceById } from '../../resources/registry.ts';
import { requiredParam, singleParam, type FormBody } from '../../http/form.ts';
import { InvalidGrant, InvalidScope } from '../errors.ts';
import { findLiveDelegation } from '../delegation.ts';
import { issueRefreshToken, spendRefreshToken } from '../refresh-token.ts';
import { grantReasons, grantScope, parseScope, withOpenidScope } from '../scope.ts';
import { issueAuditedAccessToken, type TokenResponse } from '../token-response.ts';
import { tokenTypeFor, type DpopBinding } from '../dpop/token-request.ts';

/**
 * RFC 6749 §6 with rotation: every use returns a new refresh token and spends the old one.
 * The scope can only shrink, and is recomputed from the current roles and the live delegation.
 */
export async function refreshTokenGrant(ctx: ServerContext, client: Client, form: FormBody, dpop?: DpopBinding): Promise<TokenResponse> {
  const presented = requiredParam(form, 'refresh_token');
  const requested = parseScope(singleParam(form, 'scope'));

  const row = await spendRefreshToken(ctx, presented, client.client_id, dpop);

  const delegation = await findLiveDelegation(ctx, row.delegation_id);
  const user = await findUser(ctx, row.user_id);
  const resource = await findResourceById(ctx, row.resource_id);
  if (delegation === undefined || user === undefined || user.status !== 'active' || resource === undefined) {
    throw new InvalidGrant('The authorization behind this refresh token was revoked.');
  }

  const bound = new Set(row.scope.split(' '));
  // RFC 6749 §6: a refresh may not ask for a scope the original grant did not include.
  if (requested?.some((scope) => !bound.has(scope)) === true) throw new InvalidScope('The requested scope exceeds the scope of the original grant.');
  const agentId = client.kind === 'agent' ? client.client_id : undefined;
  const granted = await grantScope(ctx, { userId: user.id, agentId }, resource, requested ?? [...bound], bound);
  const tokenScope = withOpenidScope(granted.scope, (requested ?? [...bound]).includes('openid'));

  const { token, expiresIn } = await issueAuditedAccessToken(ctx, {
    grantType: 'refresh_token',
    subject: user.id,
    userId: user.id,
    clientId: client.client_id,
    actor: agentId,
    audience: resource.identifier,
    scope: tokenScope,
    lifetimeSeconds: resource.access_token_ttl_seconds,
    delegationId: delegation.id,
    dpopJkt: dpop?.jkt,
    reasons: grantReasons(granted.decisions),
  });
  // RFC 9449 §5: a bound refresh token stays bound to its key; an unbound one becomes bound once a proof is sent.
  const refreshToken = await issueRefreshToken(ctx, { clientId: client.client_id, userId: user.id, delegationId: delegation.id, resourceId: resource.id, scope: [...bound], familyId: row.family_id, dpopJkt: row.dpop_jkt ?? dpop?.jkt });
  return { access_token: token, token_type: tokenTypeFor(dpop), expires_in: expiresIn, scope: tokenScope.join(' '), refresh_token: refreshToken };
}
