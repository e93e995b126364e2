import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import type { Client } from '../agents/clients.ts';
import { tokenDigest } from '../audit/log.ts';
import { formBody, requiredParam, singleParam } from '../http/form.ts';
import { nowSeconds, sha256Hex } from '../store/ids.ts';
import type { RefreshTokenTable } from '../store/schema.ts';
import { verifyOwnAccessToken, type AccessTokenClaims } from './access-token.ts';
import { authenticateClient } from './client-authentication.ts';
import { InvalidRequest, InvalidToken } from './errors.ts';
import { recordRevokedAccessToken } from './revoked-access-tokens.ts';

/**
 * RFC 7009 §2: the revocation endpoint. The client authenticates as at /token and names one of
 * its own tokens. `token_type_hint` is accepted but not needed, because refresh tokens (opaque,
 * looked up by digest) and access tokens (JWTs) cannot be mistaken for each other.
 */
export function registerRevocationEndpoint(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/revoke', { config: { rateLimit: { max: ctx.config.rateLimitPerMinute, timeWindow: '1 minute' } } }, async (request, reply) => {
    const form = formBody(request.body);
    const client = await authenticateClient(ctx, request, form, { allowPublic: true });
    const token = requiredParam(form, 'token');
    singleParam(form, 'token_type_hint');

    request.log = request.log.child({ agent: client.client_id });
    await revokeToken(ctx, client, token);
    // RFC 7009 §2.2: 200 whether or not the token was known; the client ignores the body.
    return reply.code(200).headers({ 'cache-control': 'no-store', pragma: 'no-cache' }).send();
  });
}

/**
 * Revokes a refresh token with its whole grant, or records an access token's `jti` as revoked.
 * An unknown, invalid or expired token is left alone (RFC 7009 §2.2). A token issued to another
 * client is `invalid_request`, because RFC 7009 §2.1 has the server reject such a request with an error.
 */
export async function revokeToken(ctx: ServerContext, client: Client, token: string): Promise<void> {
  const refreshToken = await ctx.db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', sha256Hex(token)).where('tenant_id', '=', ctx.tenantId).executeTakeFirst();
  if (refreshToken !== undefined) return revokeRefreshToken(ctx, client, refreshToken);

  let claims: AccessTokenClaims;
  try {
    claims = await verifyOwnAccessToken(ctx, token);
  } catch (error) {
    // A database failure propagates, so the client never gets 200 for a token that is still valid.
    if (error instanceof InvalidToken) return;
    throw error;
  }
  if (claims.tenant !== ctx.tenantId) return;
  return revokeAccessToken(ctx, client, claims, token);
}

/**
 * RFC 7009 §2.1: revoking a refresh token ends its grant. Like the reuse of a spent refresh
 * token, this revokes the token's family and its delegation, so the access tokens issued from
 * the delegation stop working at the gateway, at introspection and at userinfo.
 */
async function revokeRefreshToken(ctx: ServerContext, client: Client, row: RefreshTokenTable): Promise<void> {
  if (row.client_id !== client.client_id) throw notIssuedToClient(client, 'refresh token');

  const now = nowSeconds();
  await ctx.db.transaction().execute(async (trx) => {
    await trx.updateTable('refresh_tokens').set({ revoked_at: now }).where('family_id', '=', row.family_id).where('revoked_at', 'is', null).execute();
    await trx.updateTable('delegations').set({ revoked_at: now, revoked_reason: 'refresh_token_revoked' }).where('id', '=', row.delegation_id).where('revoked_at', 'is', null).execute();
    await ctx.audit(
      {
        event: 'token.revoked',
        user: row.user_id,
        agent: client.client_id,
        target: { token_type: 'refresh_token', delegation_id: row.delegation_id, family_id: row.family_id },
        outcome: { decision: 'allowed', revoked: ['refresh_token_family', 'delegation'] },
        reason: { rule: 'the client revoked its refresh token (RFC 7009)' },
      },
      trx,
    );
  });
}

/** Records the access token's `jti` until it expires; verifiers of Mandate's own tokens reject it from then on. */
async function revokeAccessToken(ctx: ServerContext, client: Client, claims: AccessTokenClaims, token: string): Promise<void> {
  if (claims.client_id !== client.client_id) throw notIssuedToClient(client, 'access token');

  await ctx.db.transaction().execute(async (trx) => {
    await recordRevokedAccessToken(ctx, claims, trx);
    await ctx.audit(
      {
        event: 'token.revoked',
        user: typeof claims.delegation_id === 'string' ? claims.sub : undefined,
        agent: client.client_id,
        target: { token_type: 'access_token', audience: claims.aud, delegation_id: claims.delegation_id },
        outcome: { decision: 'allowed', jti: claims.jti, token: tokenDigest(token), expires_at: claims.exp },
        reason: { rule: 'the client revoked its access token (RFC 7009)' },
      },
      trx,
    );
  });
}

function notIssuedToClient(client: Client, kind: string): InvalidRequest {
  return new InvalidRequest('The token was not issued to this client; a client can revoke only its own tokens.', { detail: `${client.client_id} tried to revoke a ${kind} of another client` });
}
