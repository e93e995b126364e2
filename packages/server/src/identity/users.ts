import type { ServerContext } from '../context.ts';
import { newId, nowSeconds } from '../store/ids.ts';
import type { UserTable } from '../store/schema.ts';
import { hashPassword, verifyAgainstDummy, verifyPassword } from './passwords.ts';

export type User = Omit<UserTable, 'password_hash'>;

export const MIN_PASSWORD_LENGTH = 12;

export interface NewUser {
  username: string;
  displayName?: string | undefined;
  email?: string | undefined;
  password: string;
}

/** Creates a local account; the password is stored only as an argon2id hash. */
export async function createUser(ctx: Pick<ServerContext, 'db' | 'tenantId'>, input: NewUser): Promise<User> {
  const row: UserTable = {
    id: newId('usr'),
    tenant_id: ctx.tenantId,
    username: input.username,
    display_name: input.displayName ?? input.username,
    email: input.email ?? null,
    password_hash: await hashPassword(input.password),
    status: 'active',
    created_at: nowSeconds(),
  };
  await ctx.db.insertInto('users').values(row).execute();
  const { password_hash: _hash, ...user } = row;
  return user;
}

export async function findUser(ctx: Pick<ServerContext, 'db' | 'tenantId'>, id: string): Promise<User | undefined> {
  return ctx.db.selectFrom('users').select(['id', 'tenant_id', 'username', 'display_name', 'email', 'status', 'created_at']).where('tenant_id', '=', ctx.tenantId).where('id', '=', id).executeTakeFirst();
}

export async function findUserByUsername(ctx: Pick<ServerContext, 'db' | 'tenantId'>, username: string): Promise<User | undefined> {
  return ctx.db.selectFrom('users').select(['id', 'tenant_id', 'username', 'display_name', 'email', 'status', 'created_at']).where('tenant_id', '=', ctx.tenantId).where('username', '=', username).executeTakeFirst();
}

/** Returns the active user whose password matches, spending the same time when the username is unknown. */
export async function authenticateUser(ctx: Pick<ServerContext, 'db' | 'tenantId'>, username: string, password: string): Promise<User | undefined> {
  const row = await ctx.db.selectFrom('users').selectAll().where('tenant_id', '=', ctx.tenantId).where('username', '=', username).executeTakeFirst();
  if (row === undefined) return verifyAgainstDummy(password).then(() => undefined);

  const valid = await verifyPassword(row.password_hash, password);
  if (!valid || row.status !== 'active') return undefined;
  const { password_hash: _hash, ...user } = row;
  return user;
}

const USER_COLUMNS = ['id', 'tenant_id', 'username', 'display_name', 'email', 'status', 'created_at'] as const;

/** Finds a user by id, or by username when no user has that id. */
export async function findUserByIdOrUsername(ctx: Pick<ServerContext, 'db' | 'tenantId'>, reference: string): Promise<User | undefined> {
  return (await findUser(ctx, reference)) ?? (await findUserByUsername(ctx, reference));
}

/** Lists the tenant's users, oldest first. */
export async function listUsers(ctx: Pick<ServerContext, 'db' | 'tenantId'>): Promise<User[]> {
  return ctx.db.selectFrom('users').select(USER_COLUMNS).where('tenant_id', '=', ctx.tenantId).orderBy('created_at').orderBy('username').execute();
}

/** Marks a user disabled and ends their sessions; sign-in rejects disabled users. Returns false for an unknown id. */
export async function disableUser(ctx: Pick<ServerContext, 'db' | 'tenantId'>, userId: string): Promise<boolean> {
  const updated = await ctx.db.updateTable('users').set({ status: 'disabled' }).where('tenant_id', '=', ctx.tenantId).where('id', '=', userId).executeTakeFirst();
  await ctx.db.deleteFrom('sessions').where('user_id', '=', userId).execute();
  return Number(updated.numUpdatedRows) > 0;
}

/** Assigns a role to a user; assigning a role the user already has changes nothing. */
export async function addUserRole(ctx: Pick<ServerContext, 'db'>, userId: string, roleId: string): Promise<void> {
  await ctx.db.insertInto('user_roles').values({ user_id: userId, role_id: roleId }).onConflict((oc) => oc.columns(['user_id', 'role_id']).doNothing()).execute();
}

/** Removes a role from a user; returns false when the user did not have it. */
export async function removeUserRole(ctx: Pick<ServerContext, 'db'>, userId: string, roleId: string): Promise<boolean> {
  const deleted = await ctx.db.deleteFrom('user_roles').where('user_id', '=', userId).where('role_id', '=', roleId).executeTakeFirst();
  return Number(deleted.numDeletedRows) > 0;
}

/** Returns the role names of each given user, sorted. */
export async function userRoleNames(ctx: Pick<ServerContext, 'db' | 'tenantId'>, userIds: string[]): Promise<Map<string, string[]>> {
  const names = new Map<string, string[]>(userIds.map((id) => [id, []]));
  if (userIds.length === 0) return names;

  const rows = await ctx.db
    .selectFrom('user_roles')
    .innerJoin('roles', 'roles.id', 'user_roles.role_id')
    .select(['user_roles.user_id', 'roles.name'])
    .where('roles.tenant_id', '=', ctx.tenantId)
    .where('user_roles.user_id', 'in', userIds)
    .orderBy('roles.name')
    .execute();
  for (const row of rows) names.get(row.user_id)?.push(row.name);
  return names;
}
