import { auditTailQuery, tailAudit, verifyAudit } from '../admin/audit.ts';
import { parseInput } from '../admin/input.ts';
import type { AuditRecord } from '../audit/entry.ts';
import type { ServerContext } from '../context.ts';
import { formatTime, numberOption, parseCommand, printJson, subcommand, withContext, type CliIo } from './command.ts';

/**
 * `mandate audit tail|verify`. `tail` prints the latest entries, or with `--after` the entries
 * that follow a sequence number, oldest first either way. `verify` exits with 1 when the hash
 * chain is broken.
 */
export async function runAudit(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('audit', args, ['tail', 'verify']);

  if (name === 'tail') {
    const { values } = parseCommand(rest, { after: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } }, []);
    const query = parseInput(auditTailQuery, { after: numberOption(values.after), limit: numberOption(values.limit) }, 'options');
    const entries = await withContext((ctx) => (values.after === undefined ? readLatestAudit(ctx, query.limit) : tailAudit(ctx, query)));
    if (values.json === true) printJson(io, entries);
    else for (const entry of entries) io.stdout(`${entry.seq}  ${formatTime(entry.created_at)}  ${JSON.stringify(entry.event)}\n`);
    return 0;
  }

  const { values } = parseCommand(rest, { json: { type: 'boolean' } }, []);
  const result = await withContext((ctx) => verifyAudit(ctx));
  if (values.json === true) printJson(io, result);

  if (result.ok) {
    if (values.json !== true) io.stdout(`The audit log is intact: ${result.entries} entries, head ${result.head}.\n`);
    return 0;
  }
  io.stderr(`The audit log is broken at entry ${result.firstBadSeq}: ${result.problem}.\n`);
  return 1;
}

/** Reads the latest `limit` entries, oldest first, like tail(1). */
async function readLatestAudit(ctx: ServerContext, limit: number): Promise<AuditRecord[]> {
  const oldest = await ctx.db.selectFrom('audit_log').select('seq').orderBy('seq', 'desc').limit(1).offset(limit - 1).executeTakeFirst();
  const after = oldest === undefined ? 0 : Number(oldest.seq) - 1;
  return tailAudit(ctx, { after, limit });
}
