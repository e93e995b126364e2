import type { ServerContext } from '../context.ts';
import { nowSeconds } from '../store/ids.ts';
import type { AccessTokenClaims } from './access-token.ts';

/**
 * Records the `jti` of a revoked access token (RFC 7009 §2) until the token expires, after
 * which its signature check fails anyway. A second revocation of the same token changes nothing.
 */
export async function recordRevokedAccessToken(ctx: ServerContext, claims: Pick<AccessTokenClaims, 'jti' | 'exp' | 'client_id'>, db: ServerContext['db'] = ctx.db): Promise<void> {
  const now = nowSeconds();
  await db.deleteFrom('revoked_access_tokens').where('expires_at', '<', now).execute();
  await db
    .insertInto('revoked_access_tokens')
    .values({ jti: claims.jti, tenant_id: ctx.tenantId, client_id: claims.client_id, expires_at: claims.exp, revoked_at: now })
    .onConflict((conflict) => conflict.column('jti').doNothing())
    .execute();
}

/** Returns whether the access token with this `jti` was revoked. A failed lookup throws rather than return false. */
export async function isAccessTokenRevoked(ctx: ServerContext, jti: string): Promise<boolean> {
  const row = await ctx.db.selectFrom('revoked_access_tokens').select('jti').where('jti', '=', jti).where('tenant_id', '=', ctx.tenantId).executeTakeFirst();
  return row !== undefined;
}
