import type { Selectable } from 'kysely';
import type { ServerContext } from '../context.ts';
import type { Db } from '../store/db.ts';
import { nowSeconds } from '../store/ids.ts';
import type { Database } from '../store/schema.ts';

/**
 * The person's side of the requests that wait for their decision: approvals of gateway calls
 * (`approvals`) and CIBA requests (`ciba_requests`). Both tables have the columns used here, with
 * the same meaning: `tenant_id`, `id`, `user_id`, `status` starting at `pending`, `created_at`,
 * `expires_at` and `decided_at`.
 */
export type DecidableTable = 'approvals' | 'ciba_requests';

export type DecisionFailure = 'not_found' | 'expired' | 'already_decided';

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

/** Lists the person's pending, unexpired requests of one table, newest first. */
export async function listPendingRequests<T extends DecidableTable>(ctx: Ctx, table: T, userId: string, limit: number): Promise<Selectable<Database[T]>[]> {
  // Kysely cannot type a query on a generic table name, but it can on the union of both tables.
  // The cast narrows the rows back to the one table queried.
  const decidable: DecidableTable = table;
  const rows = await ctx.db
    .selectFrom(decidable)
    .selectAll()
    .where('tenant_id', '=', ctx.tenantId)
    .where('user_id', '=', userId)
    .where('status', '=', 'pending')
    .where('expires_at', '>', nowSeconds())
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows as Selectable<Database[T]>[];
}

/**
 * Records the person's decision on a pending, unexpired request of their own. The update checks
 * owner, status and expiry itself, so two concurrent decisions cannot both apply. `onDecided` runs
 * in the same transaction to read the decided row, record what the decision grants and append the
 * audit entry: when it throws, the request stays pending and the error propagates. When nothing
 * was updated, the request is read again to name the reason.
 */
export async function recordDecision<Row>(
  ctx: Ctx,
  table: DecidableTable,
  input: { id: string; userId: string; decision: 'approved' | 'denied' },
  onDecided: (trx: Db) => Promise<Row>,
): Promise<{ ok: true; row: Row } | { ok: false; reason: DecisionFailure }> {
  const now = nowSeconds();
  const decided = await ctx.db.transaction().execute(async (trx) => {
    const result = await trx
      .updateTable(table)
      .set({ status: input.decision, decided_at: now })
      .where('tenant_id', '=', ctx.tenantId)
      .where('id', '=', input.id)
      .where('user_id', '=', input.userId)
      .where('status', '=', 'pending')
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return { applied: false } as const;
    return { applied: true, row: await onDecided(trx) } as const;
  });
  if (decided.applied) return { ok: true, row: decided.row };

  const current = await ctx.db.selectFrom(table).select(['user_id', 'status']).where('tenant_id', '=', ctx.tenantId).where('id', '=', input.id).executeTakeFirst();
  if (current === undefined || current.user_id !== input.userId) return { ok: false, reason: 'not_found' };
  if (current.status !== 'pending') return { ok: false, reason: 'already_decided' };
  return { ok: false, reason: 'expired' };
}
