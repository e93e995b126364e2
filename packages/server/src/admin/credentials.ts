import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { Problem, notFound } from '../http/problem.ts';
import { ConnectionError, listConnections, saveConnection, type Connection } from '../vault/connections.ts';
import { parseInput } from './input.ts';
import { requireResource, requireUser } from './references.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId' | 'envelope' | 'audit'>;

export const setCredentialBody = z
  .strictObject({
    credential: z.string().min(1, 'must not be empty').max(16 * 1024, 'must be at most 16384 characters').describe('The upstream API key or token; stored encrypted and never returned'),
  })
  .describe("A person's credential for one upstream resource");

export const listCredentialsQuery = z.strictObject({ user: z.string().min(1).optional().describe('Only this user: id or username') });

export interface SavedCredential {
  connection: Connection;
  /** True when no credential was stored before for this person and resource. */
  created: boolean;
}

/**
 * Stores a person's credential for a resource through the vault, replacing an earlier one. The
 * credential never appears in the result, the audit log or the log.
 */
export async function setCredential(ctx: Ctx, userReference: string, resourceReference: string, input: unknown, actor: string): Promise<SavedCredential> {
  const body = parseInput(setCredentialBody, input);
  const user = await requireUser(ctx, userReference, { path: true });
  const resource = await requireResource(ctx, resourceReference, { path: true });

  const before = await listConnections(ctx, { userId: user.id });
  const created = !before.some((connection) => connection.resource_id === resource.id);

  let connection: Connection;
  try {
    connection = await saveConnection(ctx, { userId: user.id, resourceId: resource.id, credential: body.credential });
  } catch (error) {
    throw connectionProblem(error);
  }

  // NOTE: saveConnection runs its own transaction, so this audit entry is appended after it commits.
  await ctx.audit({ event: 'credential.set', actor, user: user.id, target: { resource: resource.identifier, connection: connection.id }, outcome: { result: created ? 'created' : 'replaced' } });
  return { connection, created };
}

export async function listCredentials(ctx: Ctx, query: unknown): Promise<Connection[]> {
  const filter = parseInput(listCredentialsQuery, query ?? {}, 'query');
  const user = filter.user === undefined ? undefined : await requireUser(ctx, filter.user, { field: 'user' });
  return listConnections(ctx, { userId: user?.id });
}

function connectionProblem(error: unknown): unknown {
  if (!(error instanceof ConnectionError)) return error;

  if (error.reason === 'user_not_found' || error.reason === 'resource_not_found') return notFound(error.message.replace(/ was not found\.$/, ''));
  return new Problem(400, 'Bad Request', error.message);
}
