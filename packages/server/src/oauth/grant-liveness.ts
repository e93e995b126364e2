import type { ServerContext } from '../context.ts';
import type { AccessTokenClaims } from './access-token.ts';
import { activeAgentIds } from '../agents/clients.ts';
import { readParentDelegations } from './delegation.ts';

/**
 * Checks that the grant behind an access token is still live. Its client must be active and not
 * waiting for an administrator's review (kind `registered`). For a token issued on a person's
 * behalf, the delegation and its parents must be unrevoked, it must belong to this person and
 * client, every agent that handed the token on must be active, and so must the person. A token
 * without a delegation must be the client's own (`sub` = `client_id`, from client_credentials). Introspection and userinfo apply this, as the
 * gateway does, so revoking a delegation or disabling a principal ends its tokens at once.
 */
export async function isGrantLive(ctx: ServerContext, claims: AccessTokenClaims): Promise<boolean> {
  if (claims.tenant !== ctx.tenantId) return false;

  const client = await ctx.db.selectFrom('clients').select(['status', 'kind']).where('tenant_id', '=', ctx.tenantId).where('client_id', '=', claims.client_id).executeTakeFirst();
  if (client === undefined || client.status !== 'active' || client.kind === 'registered') return false;

  if (typeof claims.delegation_id !== 'string') return claims.sub === claims.client_id;

  const delegation = await ctx.db.selectFrom('delegations').select(['user_id', 'client_id', 'revoked_at', 'parent_delegation_id']).where('tenant_id', '=', ctx.tenantId).where('id', '=', claims.delegation_id).executeTakeFirst();
  if (delegation === undefined || delegation.revoked_at !== null) return false;
  if (delegation.user_id !== claims.sub || delegation.client_id !== claims.client_id) return false;
  const parents = await readParentDelegations(ctx, delegation);
  if (parents === undefined) return false;
  const active = await activeAgentIds(ctx, parents.map((parent) => parent.client_id));
  if (!parents.every((parent) => active.has(parent.client_id))) return false;

  const user = await ctx.db.selectFrom('users').select('status').where('tenant_id', '=', ctx.tenantId).where('id', '=', claims.sub).executeTakeFirst();
  return user !== undefined && user.status === 'active';
}
