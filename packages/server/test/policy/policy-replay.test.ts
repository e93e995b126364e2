import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { callGateway, delegatedToken, startUpstream, type Upstream } from '../gateway/world.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { runCli, serverCliEnvironment } from '../cli/cli-runner.ts';
import { createPolicyWorld, setPolicy, type PolicyWorld } from './policy-world.ts';

const JSON_TYPE = { 'content-type': 'application/json' };

interface ReplayedResult {
  result: string;
  denied_by?: string;
  policies: string[];
  approval_required_by: string[];
}

interface Change {
  seq: number;
  created_at: number;
  event: string;
  user?: string;
  agent?: string;
  resource?: string;
  resource_name?: string;
  action?: string;
  method?: string;
  path?: string;
  request_id?: string;
  recorded: ReplayedResult;
  candidate: ReplayedResult;
  call_outcome: Record<string, unknown>;
}

interface ReplayOutput {
  decisions: number;
  unchanged: number;
  allow_to_deny: Change[];
  deny_to_allow: Change[];
  approval_changes: Change[];
  unreplayable: Array<{ seq: number; event: string; reason: string }>;
}

/** One gateway call made before the replays, with the audit entry that recorded its decision. */
interface Call {
  seq: number;
  createdAt: number;
  event: string;
  action: string;
  result: string;
}

describe('mandate policy replay', () => {
  let server: TestServer;
  let upstream: Upstream;
  let api: AdminApi;
  let world: PolicyWorld;
  let env: NodeJS.ProcessEnv;
  const calls = new Map<string, Call>();
  let legacySeq = 0;

  /** The policy in force while the calls are made: mail only to the company's domain. */
  const companyMail = (resource: string) => `@id("company-mail-only")
forbid(principal, action == Action::"${resource}/mail.send", resource)
unless { context.arguments has to && context.arguments.to like "*@example.com" };
`;

  /** Records the newest audit entry that carries a decision, skipping `gateway.result`, which repeats one. */
  async function recordCall(name: string, action: string, response: Response, status: number): Promise<void> {
    assert.equal(response.status, status, `${name}: ${await response.clone().text()}`);
    const entries = await readAudit(server.ctx.db, { afterSeq: Math.max(0, ...[...calls.values()].map((call) => call.seq)), limit: 1000 });
    const decided = entries.filter((entry) => entry.event.reason?.policy_decision !== undefined && entry.event.event !== 'gateway.result');
    assert.equal(decided.length, 1, `${name} recorded one decision`);
    const entry = decided[0];
    assert.ok(entry);
    calls.set(name, { seq: entry.seq, createdAt: entry.created_at, event: entry.event.event, action, result: String((entry.event.reason?.policy_decision as Record<string, unknown>).result) });
  }

  before(async () => {
    server = await startTestServer();
    upstream = await startUpstream();
    api = await adminApi(server);
    world = await createPolicyWorld(api, upstream.url);
    await setPolicy(api, companyMail(world.resourceName));

    // The token lacks mail.read, so that call is denied by the token scope.
    const token = await delegatedToken(server, world, 'pay mail.send refund');
    const post = (path: string, body: string) => callGateway(server, world, path, { method: 'POST', token, body, headers: JSON_TYPE });

    await recordCall('small payment', 'pay', await post('/payments', '{"amount":500,"currency":"EUR"}'), 200);
    await recordCall('big payment', 'pay', await post('/payments', '{"amount":5000,"currency":"EUR"}'), 200);
    await recordCall('mail outside', 'mail.send', await post('/mail', '{"to":"eve@evil.test"}'), 403);
    await recordCall('urgent mail', 'mail.send', await post('/mail', '{"to":"bob@example.com","urgent":true}'), 200);
    await recordCall('refund', 'refund', await post('/refunds', '{"amount":5}'), 403);
    await recordCall('mail read', 'mail.read', await callGateway(server, world, '/mail', { token }), 403);
    await recordCall('string amount', 'pay', await post('/payments', '{"amount":"5000"}'), 403);

    // An entry in the form recorded before the inputs that replay needs were added.
    await server.ctx.audit({
      event: 'gateway.call',
      user: world.user.id,
      agent: world.agentId,
      target: { resource: world.identifier, action: 'pay' },
      outcome: { decision: 'allowed' },
      reason: { policy_decision: { result: 'allow', policy_version: 1, user_roles: [world.userRole], agent_roles: [world.agentRole], policies: [], approval_required_by: [], errors: [], inputs: { token_scope: ['pay'], arguments: {} } } },
    });
    const newest = await server.ctx.db.selectFrom('audit_log').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    legacySeq = Number(newest?.seq);

    env = serverCliEnvironment(server, { MANDATE_PORT: '18996' });
  });

  after(async () => {
    await upstream.close();
    await server.stop();
  });

  const run = (args: string[]) => runCli(args, env);

  function candidate(name: string, source: string): string {
    const file = join(server.dataDir, name);
    writeFileSync(file, source);
    return file;
  }

  async function replayJson(file: string, ...extra: string[]): Promise<ReplayOutput> {
    const replayed = await run(['policy', 'replay', '--candidate', file, '--json', ...extra]);
    assert.equal(replayed.code, 0, replayed.stderr);
    return JSON.parse(replayed.stdout) as ReplayOutput;
  }

  function call(name: string): Call {
    const found = calls.get(name);
    assert.ok(found, name);
    return found;
  }

  /** Reduces a change to what the test checks: which call, and from which result to which. */
  function summary(change: Change): { seq: number; action: string | undefined; from: string; to: string } {
    return { seq: change.seq, action: change.action, from: change.recorded.result, to: change.candidate.result };
  }

  test('calls are recorded as expected', () => {
    assert.deepEqual(
      [...calls.entries()].map(([name, recorded]) => [name, recorded.event, recorded.result]),
      [
        ['small payment', 'gateway.call', 'allow'],
        ['big payment', 'gateway.call', 'allow'],
        ['mail outside', 'gateway.denied', 'deny'],
        ['urgent mail', 'gateway.call', 'allow'],
        ['refund', 'approval.requested', 'approval_required'],
        ['mail read', 'gateway.denied', 'deny'],
        ['string amount', 'gateway.denied', 'deny'],
      ],
    );
  });

  test('tightening candidate', async () => {
    const file = candidate(
      'tight.cedar',
      `${companyMail(world.resourceName)}
@id("big-payments")
forbid(principal, action == Action::"${world.resourceName}/pay", resource)
when { context.arguments has amount && context.arguments.amount > 1000 };

@id("urgent-mail-approval")
@approval
forbid(principal, action == Action::"${world.resourceName}/mail.send", resource)
when { context.arguments has urgent && context.arguments.urgent };

@id("no-refunds")
forbid(principal, action == Action::"${world.resourceName}/refund", resource);

@id("no-mail-read")
forbid(principal, action == Action::"${world.resourceName}/mail.read", resource);
`,
    );
    const report = await replayJson(file);

    assert.equal(report.decisions, calls.size + 1, 'one decision per call, and gateway.result entries are not counted');
    assert.deepEqual(report.allow_to_deny.map(summary), [{ seq: call('big payment').seq, action: 'pay', from: 'allow', to: 'deny' }]);
    assert.deepEqual(report.deny_to_allow, []);
    assert.deepEqual(report.approval_changes.map(summary), [
      { seq: call('urgent mail').seq, action: 'mail.send', from: 'allow', to: 'approval_required' },
      { seq: call('refund').seq, action: 'refund', from: 'approval_required', to: 'deny' },
    ]);
    // Small payment and mail outside keep their results. Mail read (token scope) and string amount (argument type) stay as recorded, although the candidate forbids mail.read.
    assert.equal(report.unchanged, 4);
    assert.deepEqual(report.unreplayable, [{ seq: legacySeq, event: 'gateway.call', reason: 'the entry does not record whether the roles and token scope allowed the call' }]);

    const [big] = report.allow_to_deny;
    assert.ok(big);
    assert.equal(big.user, world.user.id);
    assert.equal(big.agent, world.agentId);
    assert.equal(big.resource, world.identifier);
    assert.equal(big.resource_name, world.resourceName);
    assert.equal(big.method, 'POST');
    assert.equal(big.path, '/payments');
    assert.equal(big.created_at, call('big payment').createdAt);
    assert.deepEqual(big.candidate.policies, ['big-payments']);
    assert.equal(big.candidate.denied_by, 'policy');
    assert.deepEqual(report.approval_changes[0]?.candidate.approval_required_by, ['urgent-mail-approval']);
    assert.deepEqual(report.approval_changes[1]?.recorded.approval_required_by, ['requires_approval'], 'the refund needed approval by its action flag');

    assert.deepEqual(big.call_outcome, { kind: 'forwarded', upstream_status: 200 }, 'the gateway.result of the call gives its upstream status');
    assert.match(big.request_id ?? '', /^req_/);
    const refund = report.approval_changes[1];
    assert.equal(refund?.call_outcome.kind, 'approval_pending');
    assert.match(String(refund?.call_outcome.approval_id), /^apr_/);
  });

  test('loosening candidate', async () => {
    const file = candidate(
      'loose.cedar',
      `@id("company-and-partner-mail")
forbid(principal, action == Action::"${world.resourceName}/mail.send", resource)
unless { context.arguments has to && (context.arguments.to like "*@example.com" || context.arguments.to like "*@evil.test") };
`,
    );
    const report = await replayJson(file);

    assert.deepEqual(report.allow_to_deny, []);
    assert.deepEqual(report.deny_to_allow.map(summary), [{ seq: call('mail outside').seq, action: 'mail.send', from: 'deny', to: 'allow' }]);
    assert.deepEqual(report.deny_to_allow[0]?.recorded.policies, ['company-mail-only']);
    // The refund still needs approval: the action's own flag does not depend on the policy.
    assert.deepEqual(report.approval_changes, []);
    assert.equal(report.unchanged, calls.size - 1);
  });

  test('empty candidate removes conditions', async () => {
    const report = await replayJson(candidate('empty.cedar', ''));
    assert.deepEqual(report.deny_to_allow.map(summary), [{ seq: call('mail outside').seq, action: 'mail.send', from: 'deny', to: 'allow' }]);
    assert.deepEqual(report.allow_to_deny, []);
    assert.deepEqual(report.approval_changes, []);
  });

  test('policy in force changes nothing', async () => {
    const report = await replayJson(candidate('same.cedar', companyMail(world.resourceName)));
    assert.equal(report.unchanged, calls.size);
    assert.deepEqual([...report.allow_to_deny, ...report.deny_to_allow, ...report.approval_changes], []);
  });

  test('text report lists each change', async () => {
    const file = candidate('text.cedar', `forbid(principal, action == Action::"${world.resourceName}/pay", resource) when { context.arguments has amount && context.arguments.amount > 1000 };\n`);
    const replayed = await run(['policy', 'replay', '--candidate', file]);
    assert.equal(replayed.code, 0, replayed.stderr);

    const big = call('big payment');
    const lines = replayed.stdout.split('\n');
    assert.match(lines[0] ?? '', new RegExp(`^Replayed ${calls.size + 1} recorded decisions \\(entries ${call('small payment').seq} to ${legacySeq}, .+\\) against .*text\\.cedar; version \\d+ is in force\\.$`));
    assert.deepEqual(lines.slice(1), [
      'allow -> deny: 1',
      `  seq ${big.seq}  ${formatTime(big.createdAt)}  gateway.call  person ${world.user.id}  agent ${world.agentId}  resource ${world.identifier} (${world.resourceName})  action pay  POST /payments: allow -> deny (denied_by policy; policies policy0); outcome: forwarded, upstream status 200`,
      'deny -> allow: 1',
      `  seq ${call('mail outside').seq}  ${formatTime(call('mail outside').createdAt)}  gateway.denied  person ${world.user.id}  agent ${world.agentId}  resource ${world.identifier} (${world.resourceName})  action mail.send  POST /mail: deny (denied_by policy; policies company-mail-only) -> allow; outcome: denied by the policy check`,
      'approval changes: 0',
      `unchanged: ${calls.size - 2}`,
      'not replayable: 1',
      `  seq ${legacySeq}  gateway.call: the entry does not record whether the roles and token scope allowed the call`,
      '',
    ]);
  });

  test('limit and since bound the replay', async () => {
    const file = candidate('bounded.cedar', '');
    const newest = await replayJson(file, '--limit', '2');
    assert.equal(newest.decisions, 2);
    assert.deepEqual(newest.unreplayable.map((item) => item.seq), [legacySeq]);
    assert.equal(newest.unchanged, 1, 'the string amount call, the newest but one');

    const future = await run(['policy', 'replay', '--candidate', file, '--since', '2999-01-01']);
    assert.equal(future.code, 0, future.stderr);
    assert.equal(future.stdout, 'No decision was recorded since 2999-01-01T00:00:00Z, so there is nothing to replay.\n');

    for (const [option, value, message] of [
      ['--limit', '0', /Invalid --limit "0": give a number of decisions from 1 to 100000\./],
      ['--since', 'yesterday', /Invalid --since "yesterday": give an age such as 30d/],
    ] as const) {
      const rejected = await run(['policy', 'replay', '--candidate', file, option, value]);
      assert.equal(rejected.code, 1);
      assert.match(rejected.stderr, message);
    }
  });

  test('invalid candidate is one line', async () => {
    const file = candidate('bad.cedar', `forbid(principal, action == Action::"${world.resourceName}/pay", resource)\nwhen { context.arguments.amount > 1000 };\n`);
    const rejected = await run(['policy', 'replay', '--candidate', file]);
    assert.equal(rejected.code, 1);
    assert.equal(rejected.stdout, '');
    assert.equal(rejected.stderr.split('\n').length, 2, 'one line');
    assert.match(rejected.stderr, /^mandate policy: The candidate policy .*bad\.cedar is invalid: line 2, column 8: for policy `policy0`, unable to guarantee safety/);

    const unknown = await run(['policy', 'replay', '--candidate', candidate('unknown.cedar', 'forbid(principal, action == Action::"nowhere/pay", resource);')]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unrecognized action `Action::"nowhere\/pay"`/);

    const missing = await run(['policy', 'replay', '--candidate', join(server.dataDir, 'none.cedar')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^mandate policy: Cannot read the candidate policy file .*none\.cedar: ENOENT\.\n$/);

    const unnamed = await run(['policy', 'replay']);
    assert.equal(unnamed.code, 1);
    assert.equal(unnamed.stderr, 'mandate policy: Name the candidate policy with --candidate FILE.\n');
  });
});

function formatTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
