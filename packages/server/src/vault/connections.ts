import type { ServerContext } from '../context.ts';
import { newId, nowSeconds } from '../store/ids.ts';
import type { ConnectionTable } from '../store/schema.ts';

/** A stored connection as callers see it: never the ciphertext, never the credential. */
export type Connection = Omit<ConnectionTable, 'ciphertext' | 'tenant_id'>;

/** Error for a connection that cannot be saved; the admin API maps `reason` to a 404 or 400 problem. */
export class ConnectionError extends Error {
  readonly reason: 'user_not_found' | 'resource_not_found' | 'resource_without_upstream' | 'empty_credential';

  constructor(reason: ConnectionError['reason'], message: string) {
    super(message);
    this.name = 'ConnectionError';
    this.reason = reason;
  }
}

type Ctx = Pick<ServerContext, 'db' | 'tenantId' | 'envelope'>;

const PUBLIC_COLUMNS = ['id', 'user_id', 'resource_id', 'created_at', 'updated_at'] as const;

/** Returns the envelope context that binds a ciphertext to its row, so a copied ciphertext fails to open. */
function envelopeContext(connectionId: string): string {
  return `connection:${connectionId}`;
}

/**
 * Stores a person's credential for an upstream resource, encrypted, replacing the previous
 * one for the same person and resource. A replaced row keeps its id, so its ciphertext is
 * sealed again under the same context.
 */
export async function saveConnection(ctx: Ctx, input: { userId: string; resourceId: string; credential: string }): Promise<Connection> {
  if (input.credential === '') throw new ConnectionError('empty_credential', 'The credential is empty.');

  return ctx.db.transaction().execute(async (trx) => {
    const user = await trx.selectFrom('users').select('id').where('tenant_id', '=', ctx.tenantId).where('id', '=', input.userId).executeTakeFirst();
    if (user === undefined) throw new ConnectionError('user_not_found', `User ${input.userId} was not found.`);

    const resource = await trx.selectFrom('resources').select(['id', 'upstream_base_url']).where('tenant_id', '=', ctx.tenantId).where('id', '=', input.resourceId).executeTakeFirst();
    if (resource === undefined) throw new ConnectionError('resource_not_found', `Resource ${input.resourceId} was not found.`);
    if (resource.upstream_base_url === null) {
      throw new ConnectionError('resource_without_upstream', `Resource ${input.resourceId} has no upstream, so the gateway never forwards to it and a credential for it has no use.`);
    }

    const now = nowSeconds();
    const existing = await trx
      .selectFrom('connections')
      .select(PUBLIC_COLUMNS)
      .where('tenant_id', '=', ctx.tenantId)
      .where('user_id', '=', input.userId)
      .where('resource_id', '=', input.resourceId)
      .executeTakeFirst();

    if (existing !== undefined) {
      const ciphertext = await ctx.envelope.seal(input.credential, envelopeContext(existing.id));
      await trx.updateTable('connections').set({ ciphertext, updated_at: now }).where('id', '=', existing.id).execute();
      return { ...existing, updated_at: now };
    }

    // NOTE: two concurrent first saves for the same person and resource both reach this insert.
    // The unique constraint on (user_id, resource_id) then rejects the second with a database error.
    const id = newId('con');
    const ciphertext = await ctx.envelope.seal(input.credential, envelopeContext(id));
    const row: ConnectionTable = { id, tenant_id: ctx.tenantId, user_id: input.userId, resource_id: input.resourceId, ciphertext, created_at: now, updated_at: now };
    await trx.insertInto('connections').values(row).execute();
    return { id, user_id: row.user_id, resource_id: row.resource_id, created_at: now, updated_at: now };
  });
}

/** Lists connections, of one person when `userId` is given, oldest first. */
export async function listConnections(ctx: Ctx, filter: { userId?: string | undefined } = {}): Promise<Connection[]> {
  let query = ctx.db.selectFrom('connections').select(PUBLIC_COLUMNS).where('tenant_id', '=', ctx.tenantId);
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  return query.orderBy('created_at').orderBy('id').execute();
}

/** Removes a person's connection to a resource; returns whether one existed. */
export async function deleteConnection(ctx: Ctx, input: { userId: string; resourceId: string }): Promise<boolean> {
  const result = await ctx.db.deleteFrom('connections').where('tenant_id', '=', ctx.tenantId).where('user_id', '=', input.userId).where('resource_id', '=', input.resourceId).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/**
 * Decrypts a person's credential for a resource, or returns undefined when none is stored.
 * A ciphertext that fails to decrypt (tampered, or copied from another row) throws, so the
 * caller denies the request.
 */
export async function readCredential(ctx: Ctx, input: { userId: string; resourceId: string }): Promise<string | undefined> {
  const row = await ctx.db
    .selectFrom('connections')
    .select(['id', 'ciphertext'])
    .where('tenant_id', '=', ctx.tenantId)
    .where('user_id', '=', input.userId)
    .where('resource_id', '=', input.resourceId)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return ctx.envelope.open(row.ciphertext, envelopeContext(row.id));
}
