import type { ServerContext } from '../context.ts';

/** One permission a role grants: an action on a resource identifier, with the wildcards of `rolesGranting`. */
export interface Permission {
  role: string;
  resource: string;
  action: string;
}

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

/** Reads the current permissions of a person through their roles. */
export async function userPermissions(ctx: Ctx, userId: string): Promise<Permission[]> {
  return ctx.db
    .selectFrom('user_roles')
    .innerJoin('roles', 'roles.id', 'user_roles.role_id')
    .innerJoin('role_permissions', 'role_permissions.role_id', 'roles.id')
    .select(['roles.name as role', 'role_permissions.resource', 'role_permissions.action'])
    .where('user_roles.user_id', '=', userId)
    .where('roles.tenant_id', '=', ctx.tenantId)
    .execute();
}

/** Reads the current permissions of an agent (an OAuth client) through its roles. */
export async function clientPermissions(ctx: Ctx, clientId: string): Promise<Permission[]> {
  return ctx.db
    .selectFrom('client_roles')
    .innerJoin('roles', 'roles.id', 'client_roles.role_id')
    .innerJoin('role_permissions', 'role_permissions.role_id', 'roles.id')
    .select(['roles.name as role', 'role_permissions.resource', 'role_permissions.action'])
    .where('client_roles.client_id', '=', clientId)
    .where('roles.tenant_id', '=', ctx.tenantId)
    .execute();
}

/**
 * Returns the roles among `permissions` that grant `action` on `resource`. A permission's
 * resource is `*` (any resource) or one exact identifier. Its action is `*` (any action), one
 * exact name, or a prefix ending in `*`: `issues.*` grants `issues.read` and `issues.write`.
 * Action names cannot contain `*`, so a pattern never matches a name by accident.
 */
export function rolesGranting(permissions: readonly Permission[], resource: string, action: string): string[] {
  const roles = permissions.filter((p) => (p.resource === '*' || p.resource === resource) && actionMatches(p.action, action)).map((p) => p.role);
  return [...new Set(roles)].sort();
}

function actionMatches(pattern: string, action: string): boolean {
  if (pattern === action) return true;
  return pattern.endsWith('*') && action.startsWith(pattern.slice(0, -1));
}
