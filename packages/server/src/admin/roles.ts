import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { createRole, listRoles, type Role } from '../policy/roles.ts';
import { auditedTransaction } from './audited-transaction.ts';
import { rejectDuplicates } from './constraint-errors.ts';
import { parseInput } from './input.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

const permission = z
  .strictObject({
    resource: z
      .string()
      .min(1)
      .max(2000)
      .refine((value) => value === '*' || URL.canParse(value), 'must be a resource identifier (an absolute URI) or *')
      .describe('Resource identifier, or * for every resource'),
    action: z
      .string()
      .regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/, 'must be an action name (a scope token) or *')
      .describe('Action name, or * for every action'),
  })
  .describe('An action on a resource');

export const createRoleBody = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,100}$/, 'must be 1 to 100 letters, digits or . _ : -')
      .describe('Role name, unique in the tenant'),
    description: z.string().max(500).optional(),
    permissions: z
      .array(permission)
      .max(500)
      .refine((list) => new Set(list.map((p) => `${p.resource} ${p.action}`)).size === list.length, 'must not repeat a permission'),
  })
  .describe('A new role');

/** Creates a role with its permissions, atomically. */
export async function createRoleRecord(ctx: Ctx, input: unknown, actor: string): Promise<Role> {
  const body = parseInput(createRoleBody, input);

  return rejectDuplicates(`A role named ${body.name} already exists.`, () =>
    auditedTransaction(ctx, async (trx) => {
      const role = await createRole({ db: trx, tenantId: ctx.tenantId }, body);
      return { result: role, events: [{ event: 'role.created', actor, target: { role: role.name, permissions: role.permissions }, outcome: { result: 'created' } }] };
    }),
  );
}

export async function listRoleRecords(ctx: Ctx): Promise<Role[]> {
  return listRoles(ctx);
}
