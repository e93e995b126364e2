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
 * What happened to a call after its policy decision, as the audit entries of its request record
 * it. The replay compares policy decisions, and the outcome shows a reader whether the call was
 * actually forwarded, because a call that the policy allowed can still be denied by a later
 * check (a refused approval, a missing upstream credential).
 */
export type CallOutcome =
  /** `gateway.call`, with the upstream status or error of its `gateway.result` when one was read. */
  | { kind: 'forwarded'; upstreamStatus?: number | undefined; upstreamError?: string | undefined }
  /** `gateway.denied`, with the check that denied (`policy` when the decision itself denied). */
  | { kind: 'denied'; check?: string | undefined; approvalFailure?: string | undefined }
  /** `approval.requested`, or the `gateway.denied` of a repeated call whose approval is still pending. */
  | { kind: 'approval_pending'; approvalId?: string | undefined }
  /** `authzen.evaluation`: the result that the AuthZEN endpoint returned to the enforcement point. */
  | { kind: 'answered'; result?: string | undefined }
  /** Any other entry with a decision, such as `ciba.requested`. */
  | { kind: 'recorded'; event: string };

/** One recorded decision: the audit entry that recorded it, and the outcome of its call. */
export interface RecordedEntry {
  seq: number;
  createdAt: number;
  event: string;
  user?: string | undefined;
  agent?: string | undefined;
  requestId?: string | undefined;
  /** The recorded `policy_decision`, not yet validated. */
  decision: unknown;
  outcome: CallOutcome;
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
  requestId?: string | undefined;
  user?: string | undefined;
  agent?: string | undefined;
  resource?: string | undefined;
  resourceName?: string | undefined;
  action?: string | undefined;
  method?: string | undefined;
  path?: string | undefined;
  recorded: ReplayedResult;
  candidate: ReplayedResult;
  outcome: CallOutcome;
}

export interface ReplayReport {
  /** Decisions read from the audit log, replayed or not: one per request (or AuthZEN batch item). */
  decisions: number;
  firstSeq?: number | undefined;
  lastSeq?: number | undefined;
  firstCreatedAt?: number | undefined;
  lastCreatedAt?: number | undefined;
  unchanged: number;
  /** Recorded `allow`, candidate `deny`. */
  allowToDeny: DecisionChange[];
  /** Recorded `deny`, candidate `allow`. */
  denyToAllow: DecisionChange[];
  /** Every change into or out of `approval_required`. */
  approvalChanges: DecisionChange[];
  /** Entries that lack an input the replay needs, with the reason. */
  unreplayable: Array<{ seq: number; event: string; reason: string }>;
}

/** One audit entry with a `policy_decision`, as read from the log. */
interface DecisionEntry extends Pick<RecordedEntry, 'seq' | 'createdAt' | 'event' | 'user' | 'agent' | 'requestId' | 'decision'> {
  /** Tells the decisions of one request apart: the request id, and the item of an AuthZEN batch. */
  requestKey?: string | undefined;
  outcome: Record<string, unknown>;
  reason: Record<string, unknown>;
  target: Record<string, unknown>;
}

/**
 * Reads the tenant's most recent decisions, created at or after `sinceSeconds`, at most `limit`
 * of them, oldest first. Each request counts once, although the gateway may record its decision
 * in several entries: `gateway.call` and then `gateway.result` both carry it, and so would an
 * `approval.requested` and a `gateway.denied` of the same request. The oldest entry of a request
 * is its decision, and the newest gives the outcome. An agent's repeat of a call whose approval is
 * still pending is a request of its own, decided again by the policy in force at that time, so it
 * counts as a decision of its own. Entries without a request id each count once.
 *
 * The scan runs from the newest entry back. A `gateway.result` whose `gateway.call` lies beyond
 * `--since` or the limit is left out with it. The text filter only narrows the scan, and each
 * entry is checked again after parsing.
 */
export async function readRecordedDecisions(ctx: Pick<ServerContext, 'db' | 'tenantId'>, options: { sinceSeconds: number; limit: number }): Promise<RecordedEntry[]> {
  const decisions: RecordedEntry[] = [];
  const byRequest = new Map<string, RecordedEntry>();
  const results = new Map<string, DecisionEntry>();
  let beforeSeq: number | undefined;
  let full = false;

  while (!full) {
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
      const entry = decisionEntry(Number(row.seq), Number(row.created_at), row.entry);
      if (entry === undefined) continue;

      // A gateway.result is newer than its gateway.call, so it is read first and kept for it.
      if (entry.event === 'gateway.result') {
        if (entry.requestKey !== undefined && !results.has(entry.requestKey)) results.set(entry.requestKey, entry);
        continue;
      }

      const known = entry.requestKey === undefined ? undefined : byRequest.get(entry.requestKey);
      if (known !== undefined) {
        // An older entry of a request already read: it recorded the decision first.
        Object.assign(known, { seq: entry.seq, createdAt: entry.createdAt, event: entry.event, decision: entry.decision, user: entry.user ?? known.user, agent: entry.agent ?? known.agent });
        continue;
      }
      if (decisions.length >= options.limit) {
        // Read the rest of this page for older entries of requests already counted, then stop.
        full = true;
        continue;
      }

      const result = entry.requestKey === undefined ? undefined : results.get(entry.requestKey);
      const recorded: RecordedEntry = { seq: entry.seq, createdAt: entry.createdAt, event: entry.event, user: entry.user, agent: entry.agent, requestId: entry.requestId, decision: entry.decision, outcome: callOutcome(entry, result) };
      decisions.push(recorded);
      if (entry.requestKey !== undefined) byRequest.set(entry.requestKey, recorded);
    }
    if (rows.length < PAGE_SIZE) break;
    beforeSeq = Number(rows.at(-1)?.seq);
  }
  return decisions.sort((first, second) => first.seq - second.seq);
}

function decisionEntry(seq: number, createdAt: number, text: string): DecisionEntry | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(parsed) || !isRecord(parsed.reason) || !('policy_decision' in parsed.reason)) return undefined;

  const reason = parsed.reason;
  const requestId = stringOrUndefined(parsed.request_id);
  const batchIndex = typeof reason.batch_index === 'number' ? reason.batch_index : undefined;
  return {
    seq,
    createdAt,
    event: stringOrUndefined(parsed.event) ?? '',
    user: stringOrUndefined(parsed.user),
    agent: stringOrUndefined(parsed.agent),
    requestId,
    requestKey: requestId === undefined ? undefined : `${requestId}#${batchIndex ?? ''}`,
    decision: reason.policy_decision,
    outcome: isRecord(parsed.outcome) ? parsed.outcome : {},
    reason,
    target: isRecord(parsed.target) ? parsed.target : {},
  };
}

/** Reads the outcome of a call from the newest entry of its request and, after a `gateway.call`, its `gateway.result`. */
function callOutcome(newest: DecisionEntry, result: DecisionEntry | undefined): CallOutcome {
  switch (newest.event) {
    case 'gateway.call':
      return {
        kind: 'forwarded',
        upstreamStatus: typeof result?.outcome.upstream_status === 'number' ? result.outcome.upstream_status : undefined,
        upstreamError: stringOrUndefined(result?.outcome.error),
      };
    case 'gateway.denied':
      if (newest.outcome.decision === 'approval_required') return { kind: 'approval_pending', approvalId: stringOrUndefined(newest.reason.approval_id) };
      return { kind: 'denied', check: stringOrUndefined(newest.reason.check), approvalFailure: stringOrUndefined(newest.reason.approval_failure) };
    case 'approval.requested':
      return { kind: 'approval_pending', approvalId: stringOrUndefined(newest.target.approval_id) };
    case 'authzen.evaluation':
      return { kind: 'answered', result: stringOrUndefined(newest.outcome.result) };
    default:
      return { kind: 'recorded', event: newest.event };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * Decides each recorded call again with `candidate` and sorts the differences. The comparison is
 * between the recorded policy decision (`policy_decision.result`) and the candidate's decision,
 * whatever happened to the call afterwards, which each change reports as its outcome. A decision
 * that the roles, the token scope or the argument types made stays as recorded, because a policy
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
    requestId: entry.requestId,
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
      errors: record.errors ?? [],
      policyVersion: record.policy_version,
    },
    candidate,
    outcome: entry.outcome,
  };
}
