import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { notFound } from '../http/problem.ts';
import { MIN_PASSWORD_LENGTH, addUserRole, createUser, disableUser, listUsers, removeUserRole, userRoleNames, type User } from '../identity/users.ts';
import { auditedTransaction } from './audited-transaction.ts';
import { rejectDuplicates } from './constraint-errors.ts';
import { parseInput } from './input.ts';
import { requireRole, requireRoles, requireUser } from './references.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

export const roleName = z.string().min(1).max(100).describe('Role name');

export const createUserBody = z
  .strictObject({
    username: z
      .string()
      .regex(/^[A-Za-z0-9._@-]{1,64}$/, 'must be 1 to 64 letters, digits or . _ @ -')
      .describe('Sign-in name, unique in the tenant'),
    password: z
      .string()
      .min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters`)
      .max(1024, 'must be at most 1024 characters')
      .describe('Initial password; stored only as an argon2id hash'),
    display_name: z.string().min(1).max(200).optional(),
    email: z.email().max(320).optional(),
    roles: z.array(roleName).max(100).optional().describe('Names of roles to assign'),
  })
  .describe('A new local user');

export const roleAssignmentBody = z.strictObject({ role: roleName }).describe('A role to assign');

/** A user as the admin API and the CLI show it: never the password hash. */
export interface UserView extends User {
  roles: string[];
}

/** Creates a user and assigns the named roles, atomically. */
export async function createUserRecord(ctx: Ctx, input: unknown, actor: string): Promise<UserView> {
  const body = parseInput(createUserBody, input);

  const roles = await requireRoles(ctx, body.roles, 'roles');

  return rejectDuplicates(`A user named ${body.username} already exists.`, () =>
    auditedTransaction(ctx, async (trx) => {
      const scoped = { db: trx, tenantId: ctx.tenantId };
      const user = await createUser(scoped, { username: body.username, displayName: body.display_name, email: body.email, password: body.password });
      for (const role of roles) await addUserRole(scoped, user.id, role.id);

      const view = { ...user, roles: roles.map((role) => role.name).sort() };
      return { result: view, events: [{ event: 'user.created', actor, user: user.id, target: { username: user.username, roles: view.roles }, outcome: { result: 'created' } }] };
    }),
  );
}

export async function listUserRecords(ctx: Ctx): Promise<UserView[]> {
  const users = await listUsers(ctx);
  const roles = await userRoleNames(
    ctx,
    users.map((user) => user.id),
  );
  return users.map((user) => ({ ...user, roles: roles.get(user.id) ?? [] }));
}

/** Assigns a role to a user (by id or username); assigning it twice changes nothing. */
export async function grantUserRole(ctx: Ctx, userReference: string, input: unknown, actor: string): Promise<UserView> {
  const body = parseInput(roleAssignmentBody, input);
  const user = await requireUser(ctx, userReference, { path: true });
  const role = await requireRole(ctx, body.role, { field: 'role' });

  await auditedTransaction(ctx, async (trx) => {
    await addUserRole({ db: trx }, user.id, role.id);
    return { result: undefined, events: [{ event: 'user.role_granted', actor, user: user.id, target: { role: role.name }, outcome: { result: 'granted' } }] };
  });
  return viewOf(ctx, user);
}

/** Removes a role from a user; 404 when the user does not have it. */
export async function revokeUserRole(ctx: Ctx, userReference: string, roleReference: string, actor: string): Promise<UserView> {
  const user = await requireUser(ctx, userReference, { path: true });
  const role = await requireRole(ctx, roleReference, { path: true });

  await auditedTransaction(ctx, async (trx) => {
    const removed = await removeUserRole({ db: trx }, user.id, role.id);
    if (!removed) throw notFound(`Role ${role.name} of user ${user.username}`);
    return { result: undefined, events: [{ event: 'user.role_removed', actor, user: user.id, target: { role: role.name }, outcome: { result: 'removed' } }] };
  });
  return viewOf(ctx, user);
}

/** Disables a user and ends their sessions; their delegations stay until revoked. */
export async function disableUserRecord(ctx: Ctx, userReference: string, actor: string): Promise<UserView> {
  const user = await requireUser(ctx, userReference, { path: true });

  await auditedTransaction(ctx, async (trx) => {
    await disableUser({ db: trx, tenantId: ctx.tenantId }, user.id);
    return { result: undefined, events: [{ event: 'user.disabled', actor, user: user.id, outcome: { result: 'disabled' } }] };
  });
  return viewOf(ctx, { ...user, status: 'disabled' });
}

async function viewOf(ctx: Ctx, user: User): Promise<UserView> {
  const roles = await userRoleNames(ctx, [user.id]);
  return { ...user, roles: roles.get(user.id) ?? [] };
}
