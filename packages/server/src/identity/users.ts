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
