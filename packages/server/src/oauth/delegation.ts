import type { ServerContext } from '../context.ts';
import { newId, nowSeconds } from '../store/ids.ts';
import type { DelegationTable } from '../store/schema.ts';

export type Delegation = DelegationTable;

export interface NewDelegation {
  userId: string;
  clientId: string;
  resourceId: string;
  scope: string[];
  source: DelegationTable['source'];
}

/** Records that a person lets an agent use these scopes on one resource, until revoked. */
export async function createDelegation(ctx: Pick<ServerContext, 'db' | 'tenantId'>, input: NewDelegation): Promise<Delegation> {
  const delegation: Delegation = {
    id: newId('dlg'),
    tenant_id: ctx.tenantId,
    user_id: input.userId,
    client_id: input.clientId,
    resource_id: input.resourceId,
    scope: input.scope.join(' '),
    source: input.source,
    created_at: nowSeconds(),
    last_used_at: null,
    revoked_at: null,
    revoked_reason: null,
  };
  await ctx.db.insertInto('delegations').values(delegation).execute();
  return delegation;
}

/** Returns the delegation when it exists and has not been revoked. */
export async function findLiveDelegation(ctx: Pick<ServerContext, 'db' | 'tenantId'>, id: string): Promise<Delegation | undefined> {
  const delegation = await ctx.db.selectFrom('delegations').selectAll().where('tenant_id', '=', ctx.tenantId).where('id', '=', id).executeTakeFirst();
  return delegation === undefined || delegation.revoked_at !== null ? undefined : delegation;
}
