import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { callGateway, delegatedToken, startUpstream, type Upstream } from '../gateway/world.ts';
import { readAudit } from '../../src/audit/verify.ts';
import type { AuditEvent } from '../../src/audit/entry.ts';
import { decideApproval } from '../../src/approvals/service.ts';
import { compilePolicy } from '../../src/policy/cedar-compile.ts';
import { tenantCedarSchema } from '../../src/policy/policy-store.ts';
import { readRecordedDecisions, replayDecisions, type CallOutcome, type DecisionChange, type ReplayReport } from '../../src/policy/replay.ts';
import { createPolicyWorld, setPolicy, type PolicyWorld } from './policy-world.ts';

type Result = 'allow' | 'deny' | 'approval_required';
type Category = 'unchanged' | 'allowToDeny' | 'denyToAllow' | 'approvalChanges';

/** Where the replay must list a recorded decision, by recorded result and then candidate result. */
const CATEGORY: Record<Result, Record<Result, Category>> = {
  allow: { allow: 'unchanged', deny: 'allowToDeny', approval_required: 'approvalChanges' },
  deny: { allow: 'denyToAllow', deny: 'unchanged', approval_required: 'approvalChanges' },
  approval_required: { allow: 'approvalChanges', deny: 'approvalChanges', approval_required: 'unchanged' },
};

/** The argument value that makes the in-force policy (`now`) or the candidate (`next`) decide each result. */
const STEER: Record<Result, string> = { allow: 'allow', deny: 'deny', approval_required: 'approval' };

const ACT = [{ name: 'act', method: 'POST', path_prefix: '/act', arguments: { now: 'String', next: 'String' } }];
const JSON_TYPE = { 'content-type': 'application/json' };

/** One gateway request made before the replay, with what the replay must report for it. */
interface Made {
  label: string;
  seq: number;
  requestId: string;
  recorded: Result;
  candidate: Result;
  outcome: CallOutcome;
}

/** Policies that decide `act` of the given resources by the argument `name`: "deny" denies, "approval" needs approval. */
function steeringPolicy(name: 'now' | 'next', resourceNames: string[]): string {
  const actions = resourceNames.map((resource) => `Action::"${resource}/act"`).join(', ');
  return `@id("${name}-deny")
forbid(principal, action in [${actions}], resource)
when { context.arguments has ${name} && context.arguments.${name} == "deny" };

@id("${name}-approval")
@approval
forbid(principal, action in [${actions}], resource)
when { context.arguments has ${name} && context.arguments.${name} == "approval" };
`;
}

describe('replay against recorded outcomes', () => {
  let server: TestServer;
  let upstream: Upstream;
  let api: AdminApi;
  /** The upstream answers. */
  let live: PolicyWorld;
  /** The upstream base URL points at a closed port, so every forwarded call fails. */
  let unreachable: PolicyWorld;
  /** The person has no upstream credential stored. */
  let uncredentialed: PolicyWorld;
  /** The action's argument declarations are damaged while one call is made. */
  let damaged: PolicyWorld;
  const tokens = new Map<PolicyWorld, string>();
  const made: Made[] = [];
  let serial = 0;

  /** Sends one call and returns its response with the audit entries it appended. */
  async function send(world: PolicyWorld, body: string, headers: Record<string, string> = {}, path = '/act'): Promise<{ response: Response; entries: AuditEvent[]; seqs: number[] }> {
    const mark = await newestSeq();
    const response = await callGateway(server, world, path, { method: 'POST', token: tokens.get(world), body, headers: { ...JSON_TYPE, ...headers } });
    const records = await readAudit(server.ctx.db, { afterSeq: mark, limit: 100 });
    return { response, entries: records.map((record) => record.event), seqs: records.map((record) => record.seq) };
  }

  async function newestSeq(): Promise<number> {
    const row = await server.ctx.db.selectFrom('audit_log').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  /**
   * Sends a call steered to `recorded` now and `candidate` under the candidate, checks its
   * status and the event of its first audit entry with a decision, and remembers it.
   */
  async function record(label: string, world: PolicyWorld, recorded: Result, candidate: Result, expected: { status: number; event: string; outcome: CallOutcome; body?: string; headers?: Record<string, string>; path?: string }): Promise<{ body: Record<string, unknown>; text: string; item: Made }> {
    serial += 1;
    const text = expected.body ?? JSON.stringify({ now: STEER[recorded], next: STEER[candidate], serial });
    const { response, entries, seqs } = await send(world, text, expected.headers, expected.path);
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(response.status, expected.status, `${label}: ${JSON.stringify(body)}`);

    const index = entries.findIndex((entry) => entry.reason?.policy_decision !== undefined);
    const entry = entries[index];
    assert.ok(entry, `${label} recorded a decision`);
    assert.equal(entry.event, expected.event, label);
    assert.equal((entry.reason?.policy_decision as { result?: string }).result, recorded, label);
    const item: Made = { label, seq: seqs[index] ?? 0, requestId: String(entry.request_id), recorded, candidate, outcome: expected.outcome };
    made.push(item);
    return { body, text, item };
  }

  before(async () => {
    server = await startTestServer();
    upstream = await startUpstream();
    api = await adminApi(server);
    live = await createPolicyWorld(api, upstream.url, { actions: ACT });
    unreachable = await createPolicyWorld(api, `http://127.0.0.1:${await freePort()}`, { actions: ACT });
    uncredentialed = await createPolicyWorld(api, upstream.url, { actions: ACT, storeCredential: false });
    damaged = await createPolicyWorld(api, upstream.url, { actions: ACT });
    for (const world of [live, unreachable, uncredentialed, damaged]) tokens.set(world, await delegatedToken(server, world, 'act'));
    await setPolicy(api, steeringPolicy('now', [live.resourceName, unreachable.resourceName, uncredentialed.resourceName]));

    const results: Result[] = ['allow', 'deny', 'approval_required'];
    for (const candidate of results) {
      await record(`forwarded, candidate ${candidate}`, live, 'allow', candidate, { status: 200, event: 'gateway.call', outcome: { kind: 'forwarded', upstreamStatus: 200 } });
      await record(`upstream failed, candidate ${candidate}`, unreachable, 'allow', candidate, { status: 502, event: 'gateway.call', outcome: { kind: 'forwarded', upstreamError: 'upstream_error' } });
      await record(`credential missing, candidate ${candidate}`, uncredentialed, 'allow', candidate, { status: 403, event: 'gateway.denied', outcome: { kind: 'denied', check: 'credential_missing' } });
      await record(`policy deny, candidate ${candidate}`, live, 'deny', candidate, { status: 403, event: 'gateway.denied', outcome: { kind: 'denied', check: 'policy' } });

      // A new approval, then the agent repeats the same call while it is pending.
      const requested = await record(`approval requested, candidate ${candidate}`, live, 'approval_required', candidate, { status: 403, event: 'approval.requested', outcome: { kind: 'approval_pending' } });
      const pendingId = String(requested.body.approval_id);
      requested.item.outcome = { kind: 'approval_pending', approvalId: pendingId };
      await record(`approval repeated, candidate ${candidate}`, live, 'approval_required', candidate, { status: 403, event: 'gateway.denied', outcome: { kind: 'approval_pending', approvalId: pendingId }, body: requested.text });

      // The person refuses, and the agent presents the refused approval.
      const refused = await record(`approval before refusal, candidate ${candidate}`, live, 'approval_required', candidate, { status: 403, event: 'approval.requested', outcome: { kind: 'approval_pending' } });
      const refusedId = String(refused.body.approval_id);
      refused.item.outcome = { kind: 'approval_pending', approvalId: refusedId };
      assert.equal((await decideApproval(server.ctx, { id: refusedId, userId: live.user.id, decision: 'denied' })).ok, true);
      await record(`approval refused, candidate ${candidate}`, live, 'approval_required', candidate, { status: 403, event: 'gateway.denied', outcome: { kind: 'denied', check: 'approval', approvalFailure: 'denied' }, body: refused.text, headers: { 'mandate-approval': refusedId } });

      // The person approves, and the call is forwarded.
      const approved = await record(`approval before use, candidate ${candidate}`, live, 'approval_required', candidate, { status: 403, event: 'approval.requested', outcome: { kind: 'approval_pending' } });
      const approvedId = String(approved.body.approval_id);
      approved.item.outcome = { kind: 'approval_pending', approvalId: approvedId };
      assert.equal((await decideApproval(server.ctx, { id: approvedId, userId: live.user.id, decision: 'approved' })).ok, true);
      await record(`approval used, candidate ${candidate}`, live, 'approval_required', candidate, { status: 200, event: 'gateway.call', outcome: { kind: 'forwarded', upstreamStatus: 200 }, body: approved.text, headers: { 'mandate-approval': approvedId } });
    }

    // The in-force policy ignores the query, and the candidate forbids this one.
    await record('query read by candidate', live, 'allow', 'deny', { status: 200, event: 'gateway.call', outcome: { kind: 'forwarded', upstreamStatus: 200 }, path: '/act?mode=dry-run', body: '{"now":"allow","next":"allow"}' });

    // A damaged declaration denies before the roles and the policy are read. It is repaired before
    // the replay, whose candidate is compiled against the current declarations.
    const stored = await server.ctx.db.selectFrom('resource_actions').select('arguments').where('resource_id', '=', damaged.resourceId).executeTakeFirstOrThrow();
    await server.ctx.db.updateTable('resource_actions').set({ arguments: '{"now":"Decimal"}' }).where('resource_id', '=', damaged.resourceId).execute();
    await record('declarations damaged', damaged, 'deny', 'deny', { status: 403, event: 'gateway.denied', outcome: { kind: 'denied', check: 'policy' }, body: '{"now":"allow","next":"allow"}' });
    await server.ctx.db.updateTable('resource_actions').set({ arguments: stored.arguments }).where('resource_id', '=', damaged.resourceId).execute();
  });

  after(async () => {
    await upstream.close();
    await server.stop();
  });

  async function replay(): Promise<ReplayReport> {
    const queryPolicy = `@id("next-no-dry-run")\nforbid(principal, action == Action::"${live.resourceName}/act", resource)\nwhen { context has query && context.query like "*mode=dry-run*" };\n`;
    const compiled = compilePolicy(steeringPolicy('next', [live.resourceName, unreachable.resourceName, uncredentialed.resourceName]) + queryPolicy, 0, await tenantCedarSchema(server.ctx));
    assert.ok(compiled.ok, JSON.stringify(compiled));
    return replayDecisions(await readRecordedDecisions(server.ctx, { sinceSeconds: 0, limit: 10_000 }), compiled.policySet);
  }

  /** Finds the list that names the decision recorded at `seq`, or `unchanged`. */
  function listing(report: ReplayReport, seq: number): { category: Category; change?: DecisionChange } {
    for (const category of ['allowToDeny', 'denyToAllow', 'approvalChanges'] as const) {
      const change = report[category].find((item) => item.seq === seq);
      if (change !== undefined) return { category, change };
    }
    return { category: 'unchanged' };
  }

  test('each request counts once', async () => {
    const report = await replay();
    assert.equal(report.decisions, made.length, 'gateway.result and the other entries of a request add no decision');
    assert.deepEqual(report.unreplayable, []);
    assert.equal(new Set(made.map((item) => item.requestId)).size, made.length, 'every call was its own request');
  });

  for (const label of ['forwarded', 'upstream failed', 'credential missing', 'policy deny', 'approval requested', 'approval repeated', 'approval before refusal', 'approval refused', 'approval before use', 'approval used']) {
    test(`${label} under each candidate`, async () => {
      const report = await replay();
      const rows = made.filter((item) => item.label.startsWith(`${label}, `));
      assert.equal(rows.length, 3, 'one call per candidate result');

      for (const row of rows) {
        const expected = CATEGORY[row.recorded][row.candidate];
        const { category, change } = listing(report, row.seq);
        assert.equal(category, expected, `${row.label}: listed as ${category}`);
        if (change === undefined) continue;
        assert.equal(change.recorded.result, row.recorded, `${row.label}: recorded result`);
        assert.equal(change.candidate.result, row.candidate, `${row.label}: candidate result`);
        assert.equal(change.requestId, row.requestId, `${row.label}: request id`);
        assert.deepEqual(JSON.parse(JSON.stringify(change.outcome)), row.outcome, `${row.label}: outcome`);
      }
    });
  }

  test('damaged declarations stay as recorded', async () => {
    const report = await replay();
    const row = made.find((item) => item.label === 'declarations damaged');
    assert.ok(row);
    assert.equal(listing(report, row.seq).category, 'unchanged', 'a damaged declaration denies under any policy');
    assert.equal(report.unreplayable.some((item) => item.seq === row.seq), false, 'it is not reported as unreplayable');
  });

  test('query reaches the candidate', async () => {
    const report = await replay();
    const row = made.find((item) => item.label === 'query read by candidate');
    assert.ok(row);
    const { category, change } = listing(report, row.seq);
    assert.equal(category, 'allowToDeny');
    assert.deepEqual(change?.candidate.policies, ['next-no-dry-run']);
  });

  test('unchanged count matches the table', async () => {
    const report = await replay();
    assert.equal(report.unchanged, made.filter((item) => CATEGORY[item.recorded][item.candidate] === 'unchanged').length);
  });

  test('entries of one request count once', async () => {
    // An approval.requested followed by a gateway.denied of the same request, as a gateway that
    // recorded both would write them: one decision, whose outcome the newer entry gives.
    const requested = made.find((item) => item.label === 'approval requested, candidate deny');
    assert.ok(requested);
    const [original] = await readAudit(server.ctx.db, { afterSeq: requested.seq - 1, limit: 1 });
    assert.ok(original);
    assert.equal(original.event.event, 'approval.requested');
    const approvalId = String(original.event.target?.approval_id);
    const before = await replay();

    await server.ctx.audit({ ...original.event, event: 'gateway.denied', outcome: { decision: 'approval_required', error: 'approval_required', status: 403 }, reason: { ...original.event.reason, check: 'approval', approval_id: approvalId } });
    const after = await replay();
    assert.equal(after.decisions, before.decisions, 'no decision added');
    const { category, change } = listing(after, requested.seq);
    assert.equal(category, 'approvalChanges', 'listed under the older entry');
    assert.equal(change?.event, 'approval.requested');
    assert.deepEqual(change?.outcome, { kind: 'approval_pending', approvalId });
  });

  test('AuthZEN batch items stay apart', async () => {
    const forwarded = made.find((item) => item.label === 'forwarded, candidate deny');
    assert.ok(forwarded);
    const [original] = await readAudit(server.ctx.db, { afterSeq: forwarded.seq - 1, limit: 1 });
    assert.ok(original);
    const before = await replay();

    for (const index of [0, 1]) {
      await server.ctx.audit({ event: 'authzen.evaluation', user: original.event.user, agent: original.event.agent, outcome: { decision: true, result: 'allow' }, reason: { policy_decision: original.event.reason?.policy_decision, batch_index: index }, request_id: 'req_replay_batch' });
    }
    const after = await replay();
    assert.equal(after.decisions, before.decisions + 2, 'two items of one batch are two decisions');
    const added = after.allowToDeny.filter((change) => change.requestId === 'req_replay_batch');
    assert.deepEqual(
      added.map((change) => change.outcome),
      [
        { kind: 'answered', result: 'allow' },
        { kind: 'answered', result: 'allow' },
      ],
    );
  });

  test('limit counts requests', async () => {
    const all = await readRecordedDecisions(server.ctx, { sinceSeconds: 0, limit: 10_000 });
    const bySeq = new Map(all.map((entry) => [entry.seq, entry]));
    for (const limit of [1, 2, 3, 5, 8, 13]) {
      const limited = await readRecordedDecisions(server.ctx, { sinceSeconds: 0, limit });
      assert.equal(limited.length, limit, `limit ${limit}`);
      for (const entry of limited) assert.deepEqual(entry, bySeq.get(entry.seq), `limit ${limit}: seq ${entry.seq} reads as in the full replay`);
    }
  });
});
