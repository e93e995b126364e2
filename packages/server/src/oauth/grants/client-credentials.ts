import type { ServerContext } from '../../context.ts';
import type { Client } from '../../agents/clients.ts';
import { ADMIN_SCOPE, adminAudience } from '../../admin/admin-scope.ts';
import { evaluationAccessToken, evaluationAudience } from '../../authzen/pep-authentication.ts';
import { repeatedParam, singleParam, type FormBody } from '../../http/form.ts';
import { InvalidScope, InvalidTarget, UnauthorizedClient } from '../errors.ts';
import { resolveResource } from '../resource-indicator.ts';
import { grantReasons, grantScope, parseScope } from '../scope.ts';
import { issueAuditedAccessToken, type TokenResponse } from '../token-response.ts';
import { tokenTypeFor, type DpopBinding } from '../dpop/token-request.ts';

/**
 * RFC 6749 §4.4: an agent obtains a token for itself, with `sub` = its client_id and no person.
 * An admin client obtains the admin API scope this way, and an admin client or application the
 * scope of the AuthZEN Access Evaluation API (see authzen/pep-authentication.ts).
 */
export async function clientCredentialsGrant(ctx: ServerContext, client: Client, form: FormBody, dpop?: DpopBinding): Promise<TokenResponse> {
  const requested = parseScope(singleParam(form, 'scope'));
  const resources = repeatedParam(form, 'resource');

  if (resources.includes(evaluationAudience(ctx.config.issuer))) return evaluationAccessToken(ctx, client, resources, requested, dpop);
  if (client.kind === 'admin') return adminToken(ctx, client, resources, requested, dpop);
  if (client.kind !== 'agent') throw new UnauthorizedClient('Only agents and admin clients may use client_credentials.');

  const resource = await resolveResource(ctx, resources);
  const granted = await grantScope(ctx, { agentId: client.client_id }, resource, requested);
  const { token, expiresIn } = await issueAuditedAccessToken(ctx, {
    grantType: 'client_credentials',
    subject: client.client_id,
    clientId: client.client_id,
    audience: resource.identifier,
    scope: granted.scope,
    lifetimeSeconds: resource.access_token_ttl_seconds,
    dpopJkt: dpop?.jkt,
    reasons: grantReasons(granted.decisions),
  });
  return { access_token: token, token_type: tokenTypeFor(dpop), expires_in: expiresIn, scope: granted.scope.join(' ') };
}

async function adminToken(ctx: ServerContext, client: Client, resources: string[], requested: string[] | undefined, dpop: DpopBinding | undefined): Promise<TokenResponse> {
  const audience = adminAudience(ctx.config.issuer);
  if (resources.length !== 1 || resources[0] !== audience) throw new InvalidTarget(`Admin clients obtain tokens only for ${audience}.`);
  if (requested !== undefined && requested.some((scope) => scope !== ADMIN_SCOPE)) throw new InvalidScope(`Admin clients may request only the ${ADMIN_SCOPE} scope.`);

  const { token, expiresIn } = await issueAuditedAccessToken(ctx, {
    grantType: 'client_credentials',
    subject: client.client_id,
    clientId: client.client_id,
    audience,
    scope: [ADMIN_SCOPE],
    lifetimeSeconds: ctx.config.accessTokenTtlSeconds,
    dpopJkt: dpop?.jkt,
    reasons: { client_kind: 'admin' },
  });
  return { access_token: token, token_type: tokenTypeFor(dpop), expires_in: expiresIn, scope: ADMIN_SCOPE };
}
