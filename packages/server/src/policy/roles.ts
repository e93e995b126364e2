import type { ServerContext } from '../context.ts';
import { newId, nowSeconds } from '../store/ids.ts';

/** One permission of a role: `action` on the resource identified by `resource`; `*` matches any. */
export interface RolePermission {
  resource: string;
  action: string;
}

export interface Role {
  id: string;
  name: string;
  description: string;
  permissions: RolePermission[];
  created_at: number;
}

export interface NewRole {
  name: string;
  description?: string | undefined;
  permissions: RolePermission[];
}

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

/** Creates a role with its permissions; run it in a transaction so that a failure leaves neither. */
export async function createRole(ctx: Ctx, input: NewRole): Promise<Role> {
  const role = { id: newId('rol'), tenant_id: ctx.tenantId, name: input.name, description: input.description ?? '', created_at: nowSeconds() };
  await ctx.db.insertInto('roles').values(role).execute();

  if (input.permissions.length > 0) {
    const rows = input.permissions.map((permission) => ({ role_id: role.id, resource: permission.resource, action: permission.action }));
    await ctx.db.insertInto('role_permissions').values(rows).execute();
  }
  return { id: role.id, name: role.name, description: role.description, permissions: input.permissions, created_at: role.created_at };
}

export async function findRoleByName(ctx: Ctx, name: string): Promise<Role | undefined> {
  const role = await ctx.db.selectFrom('roles').selectAll().where('tenant_id', '=', ctx.tenantId).where('name', '=', name).executeTakeFirst();
  if (role === undefined) return undefined;

  const permissions = await ctx.db.selectFrom('role_permissions').select(['resource', 'action']).where('role_id', '=', role.id).orderBy('resource').orderBy('action').execute();
  return { id: role.id, name: role.name, description: role.description, permissions, created_at: Number(role.created_at) };
}

/** Lists the tenant's roles with their permissions, by name. */
export async function listRoles(ctx: Ctx): Promise<Role[]> {
  const roles = await ctx.db.selectFrom('roles').selectAll().where('tenant_id', '=', ctx.tenantId).orderBy('name').execute();
  if (roles.length === 0) return [];

  const permissions = await ctx.db
    .selectFrom('role_permissions')
    .select(['role_id', 'resource', 'action'])
    .where(
      'role_id',
      'in',
      roles.map((role) => role.id),
    )
    .orderBy('resource')
    .orderBy('action')
    .execute();
  return roles.map((role) => ({
    id: role.id,
    name: role.name,
    description: role.description,
    permissions: permissions.filter((permission) => permission.role_id === role.id).map(({ resource, action }) => ({ resource, action })),
    created_at: Number(role.created_at),
  }));
}
