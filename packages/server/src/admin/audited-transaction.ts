import type { Transaction } from 'kysely';
import type { ServerContext } from '../context.ts';
import type { AuditEvent } from '../audit/entry.ts';
import { appendAudit } from '../audit/log.ts';
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
    for (const event of events) await appendAudit(trx, ctx.tenantId, event);
    return result;
  });
}
