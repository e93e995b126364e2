import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import type { AuditRecord } from '../audit/entry.ts';
import { readAudit, verifyAuditLog, type VerifyResult } from '../audit/verify.ts';
import { parseInput } from './input.ts';

export const MAX_AUDIT_PAGE = 1000;

export const auditTailQuery = z.strictObject({
  after: z.coerce.number('must be a number').int().min(0).default(0).describe('Return entries with a sequence number above this one'),
  limit: z.coerce.number('must be a number').int().min(1).max(MAX_AUDIT_PAGE).default(100).describe('Maximum number of entries'),
});

/** Reads audit entries after a sequence number, oldest first. */
export async function tailAudit(ctx: Pick<ServerContext, 'db'>, query: unknown): Promise<AuditRecord[]> {
  const { after, limit } = parseInput(auditTailQuery, query ?? {}, 'query');
  return readAudit(ctx.db, { afterSeq: after, limit });
}

/** Recomputes the hash chain; reports the first altered or missing entry. */
export async function verifyAudit(ctx: Pick<ServerContext, 'db'>): Promise<VerifyResult> {
  return verifyAuditLog(ctx.db);
}
