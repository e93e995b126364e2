/**
 * Replay of recorded decisions against a candidate policy: which calls in the audit log would
 * the candidate decide differently? `mandate policy replay` prints the result.
 */
import type { ServerContext } from '../context.ts';
import type { PolicySet } from './cedar-compile.ts';
import { decide, type DecisionResult } from './decision.ts';
import { planReplay, type RecordedDecision } from './replay-request.ts';

/** Most decisions one replay reads, so that a replay of a large log stays bounded in time and memory. */
export const MAX_REPLAY_LIMIT = 100_000;

const PAGE_SIZE = 1000;

/**
 * `gateway.result` repeats the decision of the `gateway.call` entry before it, so it is not a
 * decision of its own.
 */
const REPEATING_EVENTS = new Set(['gateway.result']);

/** One audit entry that records a decision. */
export interface RecordedEntry {
  seq: number;
  createdAt: number;
  event: string;
  user?: string | undefined;
  agent?: string | undefined;
  /** The recorded `policy_decision`, not yet validated. */
  decision: unknown;
}

/** A decision and its reasons, as the replay report shows it. */
export interface ReplayedResult {
  result: DecisionResult;
  deniedBy?: string | undefined;
  policies: string[];
  approvalRequiredBy: string[];
  errors: string[];
  policyVersion?: number | undefined;
}

/** A recorded decision that the candidate decides differently. */
export interface DecisionChange {
  seq: number;
  createdAt: number;
  event: string;
  user?: string | undefined;
  agent?: string | undefined;
  resource?: string | undefined;
  resourceName?: string | undefined;
  action?: string | undefined;
  method?: string | undefined;
  path?: string | undefined;
  recorded: ReplayedResult;
  candidate: ReplayedResult;
}

export interface ReplayReport {
  /** Decisions read from the audit log, replayed or not. */
  decisions: number;
  firstSeq?: number | undefined;
  lastSeq?: number | undefined;
  firstCreatedAt?: number | undefined;
  lastCreatedAt?: number | undefined;
  unchanged: number;
  allowToDeny: DecisionChange[];
  denyToAllow: DecisionChange[];
  /** Every change into or out of `approval_required`. */
  approvalChanges: DecisionChange[];
  /** Entries that lack an input the replay needs, with the reason. */
  unreplayable: Array<{ seq: number; event: string; reason: string }>;
}

/**
 * Reads the tenant's most recent entries with a `policy_decision`, created at or after
 * `sinceSeconds`, at most `limit` of them, oldest first. The text filter only narrows the scan,
 * and each entry is checked again after parsing.
 */
export async function readRecordedDecisions(ctx: Pick<ServerContext, 'db' | 'tenantId'>, options: { sinceSeconds: number; limit: number }): Promise<RecordedEntry[]> {
  const entries: RecordedEntry[] = [];
  let beforeSeq: number | undefined;

  while (entries.length < options.limit) {
    let query = ctx.db
      .selectFrom('audit_log')
      .select(['seq', 'created_at', 'entry'])
      .where('tenant_id', '=', ctx.tenantId)
      .where('created_at', '>=', options.sinceSeconds)
      .where('entry', 'like', '%"policy_decision":{%')
      .orderBy('seq', 'desc')
      .limit(PAGE_SIZE);
    if (beforeSeq !== undefined) query = query.where('seq', '<', beforeSeq);
    const rows = await query.execute();

    for (const row of rows) {
      const entry = recordedEntry(Number(row.seq), Number(row.created_at), row.entry);
      if (entry !== undefined && entries.length < options.limit) entries.push(entry);
    }
    if (rows.length < PAGE_SIZE) break;
    beforeSeq = Number(rows.at(-1)?.seq);
  }
  return entries.reverse();
}

function recordedEntry(seq: number, createdAt: number, text: string): RecordedEntry | undefined {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const event = typeof parsed.event === 'string' ? parsed.event : '';
  const reason = parsed.reason;
  if (REPEATING_EVENTS.has(event) || typeof reason !== 'object' || reason === null || !('policy_decision' in reason)) return undefined;

  return {
    seq,
    createdAt,
    event,
    user: typeof parsed.user === 'string' ? parsed.user : undefined,
    agent: typeof parsed.agent === 'string' ? parsed.agent : undefined,
    decision: (reason as Record<string, unknown>).policy_decision,
  };
}

/**
 * Decides each recorded call again with `candidate` and sorts the differences. A decision that
 * the roles, the token scope or the argument types made stays as recorded, because a policy
 * cannot change those. Every other decision is decided again by `decide` with the recorded
 * principals, roles, scope, action, method, path and arguments.
 */
export function replayDecisions(entries: readonly RecordedEntry[], candidate: PolicySet): ReplayReport {
  const report: ReplayReport = {
    decisions: entries.length,
    firstSeq: entries[0]?.seq,
    lastSeq: entries.at(-1)?.seq,
    firstCreatedAt: entries[0]?.createdAt,
    lastCreatedAt: entries.at(-1)?.createdAt,
    unchanged: 0,
    allowToDeny: [],
    denyToAllow: [],
    approvalChanges: [],
    unreplayable: [],
  };

  for (const entry of entries) {
    const plan = planReplay(entry.decision);
    if (plan.kind === 'unreplayable') {
      report.unreplayable.push({ seq: entry.seq, event: entry.event, reason: plan.reason });
      continue;
    }
    if (plan.kind === 'recorded') {
      report.unchanged += 1;
      continue;
    }

    const decided = decide(plan.request, candidate);
    if (decided.decision === plan.record.result) {
      report.unchanged += 1;
      continue;
    }

    const change = describeChange(entry, plan.record, {
      result: decided.decision,
      deniedBy: decided.reasons.deniedBy,
      policies: decided.reasons.policies,
      approvalRequiredBy: decided.reasons.approvalRequiredBy,
      errors: decided.reasons.errors,
    });
    if (plan.record.result === 'allow' && decided.decision === 'deny') report.allowToDeny.push(change);
    else if (plan.record.result === 'deny' && decided.decision === 'allow') report.denyToAllow.push(change);
    else report.approvalChanges.push(change);
  }
  return report;
}

function describeChange(entry: RecordedEntry, record: RecordedDecision, candidate: ReplayedResult): DecisionChange {
  const inputs = record.inputs ?? {};
  return {
    seq: entry.seq,
    createdAt: entry.createdAt,
    event: entry.event,
    user: inputs.user ?? entry.user,
    agent: inputs.agent ?? entry.agent,
    resource: inputs.resource,
    resourceName: inputs.resource_name,
    action: inputs.action,
    method: inputs.method,
    path: inputs.path,
    recorded: {
      result: record.result,
      deniedBy: record.denied_by,
      policies: record.policies,
      approvalRequiredBy: record.approval_required_by ?? [],
      errors: [],
      policyVersion: record.policy_version,
    },
    candidate,
  };
}
