import type { ServerContext } from '../context.ts';
import type { DelegationTable } from '../store/schema.ts';

/** A delegation with the names a person or an administrator recognizes it by. */
export interface DelegationView {
  id: string;
  user_id: string;
  username: string;
  client_id: string;
  agent_name: string;
  resource_id: string;
  resource_identifier: string;
  resource_display_name: string;
  scope: string;
  source: DelegationTable['source'];
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
  revoked_reason: string | null;
}

export interface DelegationFilter {
  userId?: string | undefined;
  clientId?: string | undefined;
  /** true: only unrevoked delegations; false: only revoked ones; absent: both. */
  active?: boolean | undefined;
}

/** Lists delegations, newest first. */
export async function listDelegations(ctx: Pick<ServerContext, 'db' | 'tenantId'>, filter: DelegationFilter = {}): Promise<DelegationView[]> {
  let query = ctx.db
    .selectFrom('delegations')
    .innerJoin('users', 'users.id', 'delegations.user_id')
    .innerJoin('clients', 'clients.client_id', 'delegations.client_id')
    .innerJoin('resources', 'resources.id', 'delegations.resource_id')
    .select([
      'delegations.id',
      'delegations.user_id',
      'users.username',
      'delegations.client_id',
      'clients.name as agent_name',
      'delegations.resource_id',
      'resources.identifier as resource_identifier',
      'resources.display_name as resource_display_name',
      'delegations.scope',
      'delegations.source',
      'delegations.created_at',
      'delegations.last_used_at',
      'delegations.revoked_at',
      'delegations.revoked_reason',
    ])
    .where('delegations.tenant_id', '=', ctx.tenantId);

  if (filter.userId !== undefined) query = query.where('delegations.user_id', '=', filter.userId);
  if (filter.clientId !== undefined) query = query.where('delegations.client_id', '=', filter.clientId);
  if (filter.active === true) query = query.where('delegations.revoked_at', 'is', null);
  if (filter.active === false) query = query.where('delegations.revoked_at', 'is not', null);

  return query.orderBy('delegations.created_at', 'desc').orderBy('delegations.id').execute();
}
