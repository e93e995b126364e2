import { readFileSync } from 'node:fs';
import { compilePolicy, formatProblems } from '../policy/cedar-compile.ts';
import { currentPolicyVersion, tenantCedarSchema } from '../policy/policy-store.ts';
import { MAX_REPLAY_LIMIT, readRecordedDecisions, replayDecisions, type CallOutcome, type DecisionChange, type ReplayReport, type ReplayedResult } from '../policy/replay.ts';
import { nowSeconds } from '../store/ids.ts';
import { UsageError, formatTime, parseCommand, printJson, withContext, type CliIo } from './command.ts';

const DEFAULT_SINCE = '30d';
const DEFAULT_LIMIT = 10_000;
const SECONDS_PER_UNIT: Record<string, number> = { m: 60, h: 3600, d: 86_400 };

/**
 * `mandate policy replay --candidate FILE [--since AGE|TIME] [--limit N] [--json]`: decides the
 * calls recorded in the audit log again with a candidate policy and lists each decision that
 * would change, with what happened to each of those calls. The candidate is validated against the
 * tenant's current resources first, and an invalid one exits with 1 before any entry is read.
 * Nothing is saved.
 */
export async function runPolicyReplay(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommand(args, { candidate: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } }, []);
  if (values.candidate === undefined) throw new UsageError('Name the candidate policy with --candidate FILE.');
  const candidateFile = values.candidate;
  const source = readCandidate(candidateFile);
  const sinceSeconds = parseSince(values.since ?? DEFAULT_SINCE);
  const limit = parseLimit(values.limit);

  const { report, versionInForce } = await withContext(async (ctx) => {
    const compiled = compilePolicy(source, 0, await tenantCedarSchema(ctx));
    if (!compiled.ok) throw new UsageError(`The candidate policy ${candidateFile} is invalid: ${formatProblems(compiled.errors).join(' ')}`);
    for (const line of formatProblems(compiled.warnings)) io.stderr(`warning: ${line}\n`);

    const entries = await readRecordedDecisions(ctx, { sinceSeconds, limit });
    return { report: replayDecisions(entries, compiled.policySet), versionInForce: await currentPolicyVersion(ctx) };
  });

  if (values.json === true) printJson(io, { candidate: candidateFile, policy_version_in_force: versionInForce, since: sinceSeconds, limit, ...reportJson(report) });
  else printReport(io, report, { candidateFile, versionInForce, sinceSeconds, limit });
  return 0;
}

function printReport(io: CliIo, report: ReplayReport, run: { candidateFile: string; versionInForce: number; sinceSeconds: number; limit: number }): void {
  if (report.decisions === 0) {
    io.stdout(`No decision was recorded since ${formatTime(run.sinceSeconds)}, so there is nothing to replay.\n`);
    return;
  }

  const window = `entries ${report.firstSeq ?? '-'} to ${report.lastSeq ?? '-'}, ${formatTime(report.firstCreatedAt ?? null)} to ${formatTime(report.lastCreatedAt ?? null)}`;
  const bound = report.decisions === run.limit ? ` (the newest ${run.limit}; raise --limit to read more)` : '';
  io.stdout(`Replayed ${report.decisions} recorded decisions${bound} (${window}) against ${run.candidateFile}; version ${run.versionInForce} is in force.\n`);

  printChanges(io, 'allow -> deny', report.allowToDeny);
  printChanges(io, 'deny -> allow', report.denyToAllow);
  printChanges(io, 'approval changes', report.approvalChanges);
  io.stdout(`unchanged: ${report.unchanged}\n`);
  io.stdout(`not replayable: ${report.unreplayable.length}\n`);
  for (const item of report.unreplayable) io.stdout(`  seq ${item.seq}  ${item.event}: ${item.reason}\n`);
}

function printChanges(io: CliIo, title: string, changes: DecisionChange[]): void {
  io.stdout(`${title}: ${changes.length}\n`);
  for (const change of changes) {
    const resource = change.resourceName === undefined ? (change.resource ?? '-') : `${change.resource ?? '-'} (${change.resourceName})`;
    const call = change.method === undefined && change.path === undefined ? '' : `  ${change.method ?? '-'} ${change.path ?? '-'}`;
    io.stdout(
      `  seq ${change.seq}  ${formatTime(change.createdAt)}  ${change.event}  person ${change.user ?? '-'}  agent ${change.agent ?? '-'}  resource ${resource}  action ${change.action ?? '-'}${call}: ` +
        `${describeResult(change.recorded)} -> ${describeResult(change.candidate)}; outcome: ${describeOutcome(change.outcome)}\n`,
    );
  }
}

function describeResult(result: ReplayedResult): string {
  const details: string[] = [];
  if (result.deniedBy !== undefined) details.push(`denied_by ${result.deniedBy}`);
  if (result.policies.length > 0) details.push(`policies ${result.policies.join(', ')}`);
  if (result.result === 'approval_required' && result.approvalRequiredBy.length > 0) details.push(`approval_required_by ${result.approvalRequiredBy.join(', ')}`);
  if (result.errors.length > 0) details.push(`errors: ${result.errors.join(' | ')}`);
  return details.length === 0 ? result.result : `${result.result} (${details.join('; ')})`;
}

/** Describes what happened to a recorded call after its decision, for the text report. */
function describeOutcome(outcome: CallOutcome): string {
  switch (outcome.kind) {
    case 'forwarded':
      if (outcome.upstreamError !== undefined) return `forwarded, the upstream request failed (${outcome.upstreamError})`;
      return outcome.upstreamStatus === undefined ? 'forwarded' : `forwarded, upstream status ${outcome.upstreamStatus}`;
    case 'denied': {
      const check = outcome.check === undefined ? 'denied' : `denied by the ${outcome.check} check`;
      return outcome.approvalFailure === undefined ? check : `${check} (approval ${outcome.approvalFailure})`;
    }
    case 'approval_pending':
      return outcome.approvalId === undefined ? 'waiting for approval' : `waiting for approval ${outcome.approvalId}`;
    case 'answered':
      return `AuthZEN returned ${outcome.result ?? 'no result'}`;
    case 'recorded':
      return `recorded as ${outcome.event}`;
  }
}

/** Converts the report to the snake_case member names of Mandate's other JSON output. */
function reportJson(report: ReplayReport): Record<string, unknown> {
  const result = (item: ReplayedResult) => ({
    result: item.result,
    ...(item.deniedBy === undefined ? {} : { denied_by: item.deniedBy }),
    policies: item.policies,
    approval_required_by: item.approvalRequiredBy,
    errors: item.errors,
    ...(item.policyVersion === undefined ? {} : { policy_version: item.policyVersion }),
  });
  const outcome = (item: CallOutcome): Record<string, unknown> => {
    switch (item.kind) {
      case 'forwarded':
        return { kind: item.kind, upstream_status: item.upstreamStatus, upstream_error: item.upstreamError };
      case 'denied':
        return { kind: item.kind, check: item.check, approval_failure: item.approvalFailure };
      case 'approval_pending':
        return { kind: item.kind, approval_id: item.approvalId };
      case 'answered':
        return { kind: item.kind, result: item.result };
      case 'recorded':
        return { kind: item.kind, event: item.event };
    }
  };
  const change = (item: DecisionChange) => ({
    seq: item.seq,
    created_at: item.createdAt,
    event: item.event,
    request_id: item.requestId,
    user: item.user,
    agent: item.agent,
    resource: item.resource,
    resource_name: item.resourceName,
    action: item.action,
    method: item.method,
    path: item.path,
    recorded: result(item.recorded),
    candidate: result(item.candidate),
    call_outcome: outcome(item.outcome),
  });
  return {
    decisions: report.decisions,
    first_seq: report.firstSeq,
    last_seq: report.lastSeq,
    first_created_at: report.firstCreatedAt,
    last_created_at: report.lastCreatedAt,
    unchanged: report.unchanged,
    allow_to_deny: report.allowToDeny.map(change),
    deny_to_allow: report.denyToAllow.map(change),
    approval_changes: report.approvalChanges.map(change),
    unreplayable: report.unreplayable,
  };
}

function readCandidate(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`Cannot read the candidate policy file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'read failed'}.`);
  }
}

/** `--since`: an age such as `90m`, `12h` or `30d`, or an ISO 8601 date or time. Returns Unix seconds. */
export function parseSince(text: string, now = nowSeconds()): number {
  const age = /^(\d{1,6})([mhd])$/.exec(text);
  if (age?.[1] !== undefined && age[2] !== undefined) return now - Number(age[1]) * (SECONDS_PER_UNIT[age[2]] ?? 0);

  const time = /^\d{4}-\d\d-\d\d(T[\d:.]+(Z|[+-]\d\d:\d\d)?)?$/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(time)) throw new UsageError(`Invalid --since ${JSON.stringify(text)}: give an age such as 30d, 12h or 90m, or an ISO 8601 date such as 2026-01-31.`);
  return Math.floor(time / 1000);
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LIMIT;
  const limit = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_REPLAY_LIMIT) throw new UsageError(`Invalid --limit ${JSON.stringify(text)}: give a number of decisions from 1 to ${MAX_REPLAY_LIMIT}.`);
  return limit;
}
