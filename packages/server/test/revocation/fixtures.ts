import type { ServerContext } from '../../src/context.ts';
import { newId, newSecret, nowSeconds, sha256Hex } from '../../src/store/ids.ts';

/**
 * Stores a delegation with refresh tokens, as consent at /authorize would, so revocation can be
 * tested without driving the whole authorization code flow each time.
 */
export async function storeDelegation(ctx: ServerContext, input: { userId: string; clientId: string; resourceId: string; scope: string; refreshTokens?: number }): Promise<{ id: string; refreshTokenIds: string[] }> {
  const id = newId('dlg');
  const now = nowSeconds();
  await ctx.db.insertInto('delegations').values({ id, tenant_id: ctx.tenantId, user_id: input.userId, client_id: input.clientId, resource_id: input.resourceId, scope: input.scope, source: 'consent', created_at: now, last_used_at: null, revoked_at: null, revoked_reason: null }).execute();

  const refreshTokenIds: string[] = [];
  for (let index = 0; index < (input.refreshTokens ?? 1); index += 1) {
    const tokenId = newId('rt');
    await ctx.db
      .insertInto('refresh_tokens')
      .values({ id: tokenId, token_hash: sha256Hex(newSecret()), family_id: tokenId, tenant_id: ctx.tenantId, client_id: input.clientId, user_id: input.userId, delegation_id: id, resource_id: input.resourceId, scope: input.scope, created_at: now, idle_expires_at: now + 3600, used_at: null, revoked_at: null })
      .execute();
    refreshTokenIds.push(tokenId);
  }
  return { id, refreshTokenIds };
}
