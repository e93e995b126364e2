import type { ServerContext } from '../context.ts';
import { clientPermissions, rolesGranting, userPermissions, type Permission } from './permissions.ts';

/** The outcome for one action: allowed only when every party grants it. */
export interface ActionDecision {
  action: string;
  allowed: boolean;
  /** Roles of the person that grant the action (empty when the person does not). */
  userRoles: string[];
  /** Roles of the agent that grant the action (empty when the agent does not). */
  agentRoles: string[];
  /** The first party that does not grant the action. */
  deniedBy?: 'token_scope' | 'agent_roles' | 'user_roles';
}

export interface Principals {
  /** The person the agent acts for; absent for an agent acting as itself. */
  userId?: string | undefined;
  /** The agent's client_id; absent for a person's own application token. */
  agentId?: string | undefined;
}

/**
 * Decides each action as the intersection of what was requested (or what the token carries),
 * the agent's current roles and the person's current roles. The roles are read from the
 * database on every call, so a demotion takes effect at the next decision.
 */
export async function decideActions(ctx: Pick<ServerContext, 'db' | 'tenantId'>, principals: Principals, resource: string, actions: string[], grantedScope?: Set<string>): Promise<ActionDecision[]> {
  const agentGrants: Permission[] | undefined = principals.agentId === undefined ? undefined : await clientPermissions(ctx, principals.agentId);
  const userGrants: Permission[] | undefined = principals.userId === undefined ? undefined : await userPermissions(ctx, principals.userId);

  return actions.map((action) => {
    const agentRoles = agentGrants === undefined ? [] : rolesGranting(agentGrants, resource, action);
    const userRoles = userGrants === undefined ? [] : rolesGranting(userGrants, resource, action);

    let deniedBy: ActionDecision['deniedBy'];
    if (grantedScope !== undefined && !grantedScope.has(action)) deniedBy = 'token_scope';
    else if (agentGrants !== undefined && agentRoles.length === 0) deniedBy = 'agent_roles';
    else if (userGrants !== undefined && userRoles.length === 0) deniedBy = 'user_roles';

    return { action, allowed: deniedBy === undefined, userRoles, agentRoles, ...(deniedBy === undefined ? {} : { deniedBy }) };
  });
}
