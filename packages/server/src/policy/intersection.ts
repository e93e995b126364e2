import type { ServerContext } from '../context.ts';
import { clientPermissions, rolesGranting, userPermissions, type Permission } from './permissions.ts';

/** The party that does not grant an action, checked in this order. */
export type IntersectionDenial = 'token_scope' | 'agent_roles' | 'delegating_agent_roles' | 'user_roles';

/** The outcome for one action: allowed only when every party grants it. */
export interface ActionDecision {
  action: string;
  allowed: boolean;
  /** Roles of the person that grant the action (empty when the person does not). */
  userRoles: string[];
  /** Roles of the agent that grant the action (empty when the agent does not). */
  agentRoles: string[];
  /** Roles of each agent that handed the token on, by client_id, that grant the action. */
  delegatingAgentRoles: Record<string, string[]>;
  /** The first party that does not grant the action. */
  deniedBy?: IntersectionDenial;
}

export interface Principals {
  /** The person the agent acts for; absent for an agent acting as itself. */
  userId?: string | undefined;
  /** The agent's client_id; absent for a person's own application token. */
  agentId?: string | undefined;
  /** The agents that handed the token on to `agentId`, the nearest first. */
  delegatingAgentIds?: readonly string[] | undefined;
}

/** The current permissions of each party involved. An absent party is not part of the intersection. */
export interface PartyPermissions {
  userPermissions?: readonly Permission[] | undefined;
  agentPermissions?: readonly Permission[] | undefined;
  /** The current permissions of each agent that handed the token on, by client_id. */
  delegatingAgentPermissions?: ReadonlyMap<string, readonly Permission[]> | undefined;
  /** The token's scope, when a token is involved. */
  tokenScope?: ReadonlySet<string> | undefined;
}

/**
 * Intersects the parties for one action: it must be in the token scope, granted by a role of
 * the agent, of every agent that handed the token on to it, and of the person, for each of them
 * that is involved. This is the whole permission check, with no I/O, so it is the same for
 * consent and for the gateway.
 */
export function intersect(parties: PartyPermissions, resource: string, action: string): ActionDecision {
  const agentRoles = parties.agentPermissions === undefined ? [] : rolesGranting(parties.agentPermissions, resource, action);
  const userRoles = parties.userPermissions === undefined ? [] : rolesGranting(parties.userPermissions, resource, action);
  const delegatingAgentRoles: Record<string, string[]> = {};
  for (const [agentId, permissions] of parties.delegatingAgentPermissions ?? []) delegatingAgentRoles[agentId] = rolesGranting(permissions, resource, action);

  let deniedBy: IntersectionDenial | undefined;
  if (parties.tokenScope !== undefined && !parties.tokenScope.has(action)) deniedBy = 'token_scope';
  else if (parties.agentPermissions !== undefined && agentRoles.length === 0) deniedBy = 'agent_roles';
  else if (Object.values(delegatingAgentRoles).some((roles) => roles.length === 0)) deniedBy = 'delegating_agent_roles';
  else if (parties.userPermissions !== undefined && userRoles.length === 0) deniedBy = 'user_roles';

  return { action, allowed: deniedBy === undefined, userRoles, agentRoles, delegatingAgentRoles, ...(deniedBy === undefined ? {} : { deniedBy }) };
}

/** Reads the current permissions of the person, the agent and the agents that handed it the token. A party without an id is left out. */
export async function readPartyPermissions(
  ctx: Pick<ServerContext, 'db' | 'tenantId'>,
  principals: Principals,
): Promise<{ userPermissions?: Permission[]; agentPermissions?: Permission[]; delegatingAgentPermissions?: Map<string, Permission[]> }> {
  const delegatingIds = principals.delegatingAgentIds ?? [];
  const [agentGrants, userGrants, delegatingGrants] = await Promise.all([
    principals.agentId === undefined ? undefined : clientPermissions(ctx, principals.agentId),
    principals.userId === undefined ? undefined : userPermissions(ctx, principals.userId),
    Promise.all(delegatingIds.map((id) => clientPermissions(ctx, id))),
  ]);
  return {
    ...(userGrants === undefined ? {} : { userPermissions: userGrants }),
    ...(agentGrants === undefined ? {} : { agentPermissions: agentGrants }),
    ...(delegatingIds.length === 0 ? {} : { delegatingAgentPermissions: new Map(delegatingIds.map((id, index) => [id, delegatingGrants[index] ?? []])) }),
  };
}

/**
 * Decides each action as the intersection of what was requested (or what the token carries),
 * the agent's current roles and the person's current roles. The roles are read from the
 * database on every call, so a demotion takes effect at the next decision.
 */
export async function decideActions(ctx: Pick<ServerContext, 'db' | 'tenantId'>, principals: Principals, resource: string, actions: string[], grantedScope?: Set<string>): Promise<ActionDecision[]> {
  const permissions = await readPartyPermissions(ctx, principals);
  return actions.map((action) => intersect({ ...permissions, tokenScope: grantedScope }, resource, action));
}
