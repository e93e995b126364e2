import { tailAudit, verifyAudit } from '../admin/audit.ts';
import { formatTime, numberOption, parseCommand, printJson, subcommand, withContext, type CliIo } from './command.ts';

/** `mandate audit tail|verify`; `verify` exits with 1 when the hash chain is broken. */
export async function runAudit(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('audit', args, ['tail', 'verify']);

  if (name === 'tail') {
    const { values } = parseCommand(rest, { after: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } }, []);
    const entries = await withContext((ctx) => tailAudit(ctx, { after: numberOption(values.after), limit: numberOption(values.limit) }));
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
