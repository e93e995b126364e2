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
  parentDelegationId?: string | undefined;
}

/** Maximum number of parent delegations that `readParentDelegations` walks before it treats the chain as revoked. */
const MAX_PARENT_DEPTH = 16;

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
    parent_delegation_id: input.parentDelegationId ?? null,
  };
  await ctx.db.insertInto('delegations').values(delegation).execute();
  return delegation;
}

/** Returns the delegation when it exists and has not been revoked. */
export async function findLiveDelegation(ctx: Pick<ServerContext, 'db' | 'tenantId'>, id: string): Promise<Delegation | undefined> {
  const delegation = await ctx.db.selectFrom('delegations').selectAll().where('tenant_id', '=', ctx.tenantId).where('id', '=', id).executeTakeFirst();
  return delegation === undefined || delegation.revoked_at !== null ? undefined : delegation;
}

/** A parent delegation as the chain walk reads it. */
export type ParentDelegation = Pick<Delegation, 'id' | 'user_id' | 'client_id' | 'resource_id' | 'parent_delegation_id'>;

/**
 * Reads the parents of a delegation made by chained token exchange, the nearest first: the
 * delegation of the agent that handed the token on, then the one it got it from, and so on.
 * Returns undefined when a parent is missing or revoked, so revoking an agent's delegation also
 * ends the sub-agent delegations narrowed from it. A chain longer than the walk allows counts
 * as revoked.
 */
export async function readParentDelegations(ctx: Pick<ServerContext, 'db' | 'tenantId'>, delegation: Pick<Delegation, 'parent_delegation_id'>): Promise<ParentDelegation[] | undefined> {
  const parents: ParentDelegation[] = [];
  let parentId = delegation.parent_delegation_id ?? null;
  while (parentId !== null) {
    if (parents.length >= MAX_PARENT_DEPTH) return undefined;
    const parent = await ctx.db
      .selectFrom('delegations')
      .select(['id', 'user_id', 'client_id', 'resource_id', 'revoked_at', 'parent_delegation_id'])
      .where('tenant_id', '=', ctx.tenantId)
      .where('id', '=', parentId)
      .executeTakeFirst();
    if (parent === undefined || parent.revoked_at !== null) return undefined;
    parents.push(parent);
    parentId = parent.parent_delegation_id ?? null;
  }
  return parents;
}
