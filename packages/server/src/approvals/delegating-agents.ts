import type { ServerContext } from '../context.ts';
import { findClient } from '../agents/clients.ts';
import { readParentDelegations } from '../oauth/delegation.ts';

/**
 * Returns the names of the agents that handed the token on to the agent of a delegation, the
 * nearest first, so the approval page names every agent behind a sub-agent's request. A chain that can
 * no longer be read gives the ids it has, or nothing.
 */
export async function delegatingAgentNames(ctx: ServerContext, delegationId: string): Promise<string[]> {
  const delegation = await ctx.db.selectFrom('delegations').select('parent_delegation_id').where('tenant_id', '=', ctx.tenantId).where('id', '=', delegationId).executeTakeFirst();
  if (delegation === undefined) return [];

  const parents = (await readParentDelegations(ctx, delegation)) ?? [];
  const names: string[] = [];
  for (const parent of parents) names.push((await findClient(ctx, parent.client_id))?.name ?? parent.client_id);
  return names;
}
