import type { Transaction } from 'kysely';
import type { ServerContext } from '../context.ts';
import type { AuditEvent } from '../audit/entry.ts';
import { GENESIS_HASH, canonicalEntry, chainHash } from '../audit/log.ts';
import { nowSeconds } from '../store/ids.ts';
import type { Database } from '../store/schema.ts';

export type Trx = Transaction<Database>;

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

/** The result of a unit of work and the audit events that record it. */
export interface Audited<T> {
  result: T;
  events: AuditEvent[];
}

/**
 * Runs `work` and appends its audit events in one database transaction, so a change is never
 * stored without its audit entries, and an audit entry is never stored without its change.
 */
export async function auditedTransaction<T>(ctx: Ctx, work: (trx: Trx) => Promise<Audited<T>>): Promise<T> {
  return ctx.db.transaction().execute(async (trx) => {
    const { result, events } = await work(trx);
    for (const event of events) await appendAuditWithin(trx, ctx.tenantId, event);
    return result;
  });
}

/**
 * Appends one event inside the caller's transaction, with the same chaining as `appendAudit`:
 * the head row is updated first, which locks it on PostgreSQL and serializes appenders.
 * TODO: move into audit/log.ts and let appendAudit call it, so the chaining lives in one place
 * (Kysely cannot start a transaction inside a transaction, so appendAudit cannot be called here).
 */
async function appendAuditWithin(trx: Trx, tenantId: string, event: AuditEvent): Promise<void> {
  const head = await trx
    .updateTable('audit_head')
    .set((eb) => ({ seq: eb('seq', '+', 1) }))
    .where('id', '=', 1)
    .returning(['seq', 'hash'])
    .executeTakeFirst();

  let seq = 1;
  let prevHash = GENESIS_HASH;
  if (head === undefined) {
    await trx.insertInto('audit_head').values({ id: 1, seq: 1, hash: GENESIS_HASH }).execute();
  } else {
    seq = Number(head.seq);
    prevHash = head.hash;
  }

  const createdAt = nowSeconds();
  const entry = canonicalEntry(seq, tenantId, createdAt, event);
  const hash = chainHash(prevHash, entry);

  await trx.insertInto('audit_log').values({ seq, tenant_id: tenantId, created_at: createdAt, entry, hash, prev_hash: prevHash }).execute();
  await trx.updateTable('audit_head').set({ hash }).where('id', '=', 1).execute();
}
