import type { Db } from '../store/db.ts';
import { GENESIS_HASH, chainHash } from './log.ts';
import type { AuditEvent, AuditRecord } from './entry.ts';

export type VerifyResult =
  | { ok: true; entries: number; head: string }
  | { ok: false; entries: number; firstBadSeq: number; problem: string };

const PAGE_SIZE = 1000;

/**
 * Recomputes the hash chain from the first entry and reports the first entry whose stored
 * content, hash, link or sequence number does not match, and a head row that disagrees.
 */
export async function verifyAuditLog(db: Db): Promise<VerifyResult> {
  let expectedPrev = GENESIS_HASH;
  let expectedSeq = 1;
  let checked = 0;

  for (;;) {
    const rows = await db.selectFrom('audit_log').selectAll().where('seq', '>=', expectedSeq).orderBy('seq', 'asc').limit(PAGE_SIZE).execute();
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq !== expectedSeq) return { ok: false, entries: checked, firstBadSeq: expectedSeq, problem: `entry ${expectedSeq} is missing` };
      if (row.prev_hash !== expectedPrev) return { ok: false, entries: checked, firstBadSeq: seq, problem: `entry ${seq} does not link to entry ${seq - 1}` };

      const problem = checkEntry(row.entry, seq, row.tenant_id, Number(row.created_at));
      if (problem !== undefined) return { ok: false, entries: checked, firstBadSeq: seq, problem };
      if (chainHash(row.prev_hash, row.entry) !== row.hash) return { ok: false, entries: checked, firstBadSeq: seq, problem: `entry ${seq} does not match its hash` };

      expectedPrev = row.hash;
      expectedSeq = seq + 1;
      checked += 1;
    }
    if (rows.length < PAGE_SIZE) break;
  }

  const head = await db.selectFrom('audit_head').selectAll().where('id', '=', 1).executeTakeFirst();
  const headSeq = head === undefined ? 0 : Number(head.seq);
  if (headSeq !== checked || (head !== undefined && head.hash !== expectedPrev)) {
    return { ok: false, entries: checked, firstBadSeq: checked + 1, problem: `the log ends at entry ${checked} but its head records entry ${headSeq}` };
  }
  return { ok: true, entries: checked, head: expectedPrev };
}

/** Checks that the stored columns agree with the hashed entry text. */
function checkEntry(entry: string, seq: number, tenantId: string, createdAt: number): string | undefined {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(entry) as Record<string, unknown>;
  } catch {
    return `entry ${seq} is not valid JSON`;
  }
  if (parsed.seq !== seq || parsed.tenant_id !== tenantId || parsed.created_at !== createdAt) {
    return `entry ${seq} disagrees with its stored sequence number, tenant or time`;
  }
  return undefined;
}

/** Reads entries after `afterSeq`, oldest first. */
export async function readAudit(db: Db, options: { afterSeq?: number; limit?: number } = {}): Promise<AuditRecord[]> {
  const rows = await db
    .selectFrom('audit_log')
    .selectAll()
    .where('seq', '>', options.afterSeq ?? 0)
    .orderBy('seq', 'asc')
    .limit(Math.min(options.limit ?? 100, 1000))
    .execute();
  return rows.map((row) => {
    const { seq: _seq, tenant_id: _tenant, created_at: _created, ...event } = JSON.parse(row.entry) as Record<string, unknown>;
    return { seq: Number(row.seq), created_at: Number(row.created_at), tenant_id: row.tenant_id, event: event as unknown as AuditEvent, hash: row.hash, prev_hash: row.prev_hash };
  });
}
