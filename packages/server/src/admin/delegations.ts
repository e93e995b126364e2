import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { listDelegations, type DelegationView } from '../revocation/delegations.ts';
import { revokeAgentDelegations, revokeDelegation, revokeUserDelegations } from '../revocation/revoke.ts';
import { parseInput } from './input.ts';
import { requireClient, requireUser } from './references.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

export const listDelegationsQuery = z.strictObject({
  user: z.string().min(1).optional().describe('Only delegations of this user: id or username'),
  agent: z.string().min(1).optional().describe('Only delegations to this agent: client_id'),
  active: z.enum(['true', 'false'], 'must be true or false').optional().describe('true: only unrevoked; false: only revoked'),
});

export const revokeBody = z.strictObject({ reason: z.string().max(500).optional().describe('Why, for the audit log') }).describe('A revocation');

/** Number of delegations a revocation request revoked. */
export interface RevocationResult {
  revoked: number;
}

export async function listDelegationRecords(ctx: Ctx, query: unknown): Promise<DelegationView[]> {
  const filter = parseInput(listDelegationsQuery, query ?? {}, 'query');
  const user = filter.user === undefined ? undefined : await requireUser(ctx, filter.user, { field: 'user' });
  const agent = filter.agent === undefined ? undefined : await requireClient(ctx, filter.agent, 'agent', { field: 'agent' });
  return listDelegations(ctx, { userId: user?.id, clientId: agent?.client_id, active: filter.active === undefined ? undefined : filter.active === 'true' });
}

export async function revokeOneDelegation(ctx: Ctx, id: string, input: unknown, actor: string): Promise<RevocationResult> {
  const body = parseInput(revokeBody, input === undefined ? {} : input);
  return { revoked: await revokeDelegation(ctx, id, { by: actor, reason: body.reason }) };
}

export async function revokeDelegationsOfAgent(ctx: Ctx, clientId: string, input: unknown, actor: string): Promise<RevocationResult> {
  const body = parseInput(revokeBody, input === undefined ? {} : input);
  const agent = await requireClient(ctx, clientId, 'agent', { path: true });
  return { revoked: await revokeAgentDelegations(ctx, agent.client_id, { by: actor, reason: body.reason }) };
}

export async function revokeDelegationsOfUser(ctx: Ctx, userReference: string, input: unknown, actor: string): Promise<RevocationResult> {
  const body = parseInput(revokeBody, input === undefined ? {} : input);
  const user = await requireUser(ctx, userReference, { path: true });
  return { revoked: await revokeUserDelegations(ctx, user.id, { by: actor, reason: body.reason }) };
}
