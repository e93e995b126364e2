import { canonicalJson } from '../util/canonical-json.ts';
import { sha256Hex, nowSeconds } from '../store/ids.ts';
import type { Db } from '../store/db.ts';
import type { AuditEvent, AuditRecord } from './entry.ts';

/** Hash of the (empty) log before its first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** Hashes a token so that the audit log can name it without storing it. */
export function tokenDigest(token: string): string {
  return sha256Hex(token).slice(0, 32);
}

/**
 * Appends an event. Each entry's hash is SHA-256 over the previous hash and the RFC 8785
 * canonical form of the entry, so changing or removing an entry breaks every later hash.
 * The head row is updated first inside the transaction, which locks it on PostgreSQL and
 * serializes appenders across processes.
 */
export async function appendAudit(db: Db, tenantId: string, event: AuditEvent): Promise<AuditRecord> {
  // Inside a caller's transaction the entry commits or rolls back with the caller's change.
  if (db.isTransaction) return appendInTransaction(db, tenantId, event);
  return db.transaction().execute((trx) => appendInTransaction(trx, tenantId, event));
}

async function appendInTransaction(trx: Db, tenantId: string, event: AuditEvent): Promise<AuditRecord> {
  const head = await trx.updateTable('audit_head').set((eb) => ({ seq: eb('seq', '+', 1) })).where('id', '=', 1).returning(['seq', 'hash']).executeTakeFirst();
  // The migration creates the head row; without it the log cannot be extended safely.
  if (head === undefined) throw new Error('The audit_head row is missing; the audit log cannot be appended to.');

  const seq = Number(head.seq);
  const prevHash = head.hash;
  const createdAt = nowSeconds();
  const entry = canonicalEntry(seq, tenantId, createdAt, event);
  const hash = chainHash(prevHash, entry);

  await trx.insertInto('audit_log').values({ seq, tenant_id: tenantId, created_at: createdAt, entry, hash, prev_hash: prevHash }).execute();
  await trx.updateTable('audit_head').set({ hash }).where('id', '=', 1).execute();
  return { seq, created_at: createdAt, tenant_id: tenantId, event, hash, prev_hash: prevHash };
}

export function canonicalEntry(seq: number, tenantId: string, createdAt: number, event: AuditEvent): string {
  return canonicalJson({ seq, tenant_id: tenantId, created_at: createdAt, ...stripUndefined(event) });
}

export function chainHash(prevHash: string, entry: string): string {
  return sha256Hex(`${prevHash}\n${entry}`);
}

function stripUndefined(event: AuditEvent): Record<string, unknown> {
  return JSON.parse(JSON.stringify(event)) as Record<string, unknown>;
}
