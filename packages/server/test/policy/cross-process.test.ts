import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { startServerProcess, type ServerProcess } from '../server-process.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { callGateway, delegatedToken, startUpstream, type Upstream } from '../gateway/world.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { policySetInForce } from '../../src/policy/policy-store.ts';
import { createPolicyWorld, setPolicy, type PolicyWorld } from './policy-world.ts';

// Two Mandate processes of one deployment on one database: `first` runs in this process and
// takes the admin changes, `second` is a `mandate serve` child process that serves the gateway
// calls and must apply each change at its next decision.
let first: TestServer;
let second: ServerProcess | undefined;
let upstream: Upstream;
let api: AdminApi;
let world: PolicyWorld;
let token: string;

before(async () => {
  first = await startTestServer();
  upstream = await startUpstream();
  second = await startServerProcess(first);
  api = await adminApi(first);
  world = await createPolicyWorld(api, upstream.url);
  // The second process accepts only tokens whose issuer is its own URL. So the agent gets the
  // token from it by token exchange, with a subject token that `first` issues under that URL
  // and signs with the keys that both processes load from the shared database.
  token = await delegatedToken(issuingAsSecond(), world, 'pay mail.read');
});

after(async () => {
  const exit = await second?.stop();
  await upstream.close();
  await first.stop();
  if (exit !== undefined) assert.deepEqual(exit, { code: 0, signal: null }, 'mandate serve exits cleanly on SIGTERM');
});

/** `first` with the second process's URL as issuer and URL, for the token helpers of the gateway tests. */
function issuingAsSecond(): TestServer {
  const issuer = secondProcess().issuer;
  return { ...first, issuer, url: issuer, ctx: { ...first.ctx, config: { ...first.ctx.config, issuer } } };
}

function secondProcess(): ServerProcess {
  assert.ok(second, 'the second process is running');
  return second;
}

/** Calls the gateway of the second process as the agent. */
function callSecond(path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  return callGateway(issuingAsSecond(), world, path, { ...init, token });
}

const PAYMENT = { method: 'POST', body: '{"amount":50,"currency":"EUR"}', headers: { 'content-type': 'application/json' } };

/** Checks the status of a response from the second process, quoting its body and the process output on failure. */
async function expectStatus(response: Response, status: number): Promise<Record<string, unknown>> {
  const text = await response.text();
  assert.equal(response.status, status, `the second process responded ${response.status} ${text}\nIts output:\n${secondProcess().outputTail()}`);
  return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
}

async function auditMark(): Promise<number> {
  const row = await first.ctx.db.selectFrom('audit_log').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
  return Number(row?.seq ?? 0);
}

/** Returns the policy decision that the second process recorded in the shared audit log for the one gateway call after `mark`. */
async function decisionSince(mark: number): Promise<Record<string, unknown>> {
  const records = await readAudit(first.ctx.db, { afterSeq: mark, limit: 1000 });
  const decisions = records.map((record) => record.event).filter((entry) => (entry.event === 'gateway.call' || entry.event === 'gateway.denied') && entry.agent === world.agentId);
  assert.equal(decisions.length, 1, 'one gateway decision is audited');
  const decision = decisions[0]?.reason?.policy_decision;
  assert.equal(typeof decision, 'object', 'the audit entry carries the policy decision');
  assert.notEqual(decision, null, 'the audit entry carries the policy decision');
  return decision as Record<string, unknown>;
}

test('policy cache follows the version', async () => {
  const version = await setPolicy(api, `forbid(principal, action == Action::"${world.resourceName}/pay", resource) when { context.arguments has amount && context.arguments.amount > 1000 };`);

  // The cache is checked in this process. The second process records the version it decided under.
  const loaded = await policySetInForce(first.ctx);
  assert.equal(loaded.version, version);
  assert.equal(await policySetInForce(first.ctx), loaded, 'the same version is not compiled again');

  let mark = await auditMark();
  await expectStatus(await callSecond('/mail'), 200);
  assert.equal((await decisionSince(mark)).policy_version, version);

  await setPolicy(api, '');
  const reloaded = await policySetInForce(first.ctx);
  assert.equal(reloaded.version, version + 1);
  assert.notEqual(reloaded, loaded);

  mark = await auditMark();
  await expectStatus(await callSecond('/mail'), 200);
  assert.equal((await decisionSince(mark)).policy_version, version + 1);
});

test('policy saved on one process applies on the other', async () => {
  await setPolicy(api, '');
  await expectStatus(await callSecond('/mail'), 200);

  await setPolicy(api, `@id("no-mail-reads")\nforbid(principal, action == Action::"${world.resourceName}/mail.read", resource);`);
  const denied = await expectStatus(await callSecond('/mail'), 403);
  assert.equal(denied.error, 'access_denied');

  await setPolicy(api, `@approval\nforbid(principal, action == Action::"${world.resourceName}/mail.read", resource);`);
  const approval = await expectStatus(await callSecond('/mail'), 403);
  assert.equal(approval.error, 'approval_required');

  await setPolicy(api, '');
  await expectStatus(await callSecond('/mail'), 200);
});

test('invalid policy leaves the previous version in force', async () => {
  const version = await setPolicy(api, `@id("no-mail-reads")\nforbid(principal, action == Action::"${world.resourceName}/mail.read", resource);`);
  await expectStatus(await callSecond('/mail'), 403);

  const invalidPolicies = [
    ['a syntax error', 'forbid(principal, action, resource'],
    ['an unknown action', `forbid(principal, action == Action::"${world.resourceName}/no-such-action", resource);`],
    ['an undeclared argument', `forbid(principal, action == Action::"${world.resourceName}/mail.read", resource) when { context.arguments.folder == "inbox" };`],
  ];
  for (const [problem, source] of invalidPolicies) {
    const saved = await api.call('PUT', '/policy', { source });
    assert.equal(saved.status, 422, `a policy with ${problem} is rejected: ${JSON.stringify(saved.json)}`);
    assert.equal(saved.json.version_in_force, version, `a policy with ${problem} leaves version ${version} in force`);

    const mark = await auditMark();
    const denied = await expectStatus(await callSecond('/mail'), 403);
    assert.equal(denied.error, 'access_denied', `after a policy with ${problem}, the previous policy still forbids mail reads`);
    const decision = await decisionSince(mark);
    assert.equal(decision.policy_version, version, `after a policy with ${problem}, the second process decides under version ${version}`);
    assert.deepEqual(decision.policies, ['no-mail-reads']);

    await expectStatus(await callSecond('/payments', PAYMENT), 200);
  }

  await setPolicy(api, '');
  await expectStatus(await callSecond('/mail'), 200);
});

test('agent role removed and added on one process', async () => {
  await setPolicy(api, '');
  await expectStatus(await callSecond('/mail'), 200);

  assert.equal((await api.call('DELETE', `/agents/${world.agentId}/roles/${world.agentRole}`)).status, 200);
  const mark = await auditMark();
  const denied = await expectStatus(await callSecond('/mail'), 403);
  assert.equal(denied.error, 'insufficient_scope');
  assert.equal((await decisionSince(mark)).denied_by, 'agent_roles');

  assert.equal((await api.call('POST', `/agents/${world.agentId}/roles`, { role: world.agentRole })).status, 200);
  await expectStatus(await callSecond('/mail'), 200);
});

test('person role removed and added on one process', async () => {
  await setPolicy(api, '');
  await expectStatus(await callSecond('/mail'), 200);

  assert.equal((await api.call('DELETE', `/users/${world.user.id}/roles/${world.userRole}`)).status, 200);
  const mark = await auditMark();
  const denied = await expectStatus(await callSecond('/mail'), 403);
  assert.equal(denied.error, 'insufficient_scope');
  assert.equal((await decisionSince(mark)).denied_by, 'user_roles');

  assert.equal((await api.call('POST', `/users/${world.user.id}/roles`, { role: world.userRole })).status, 200);
  await expectStatus(await callSecond('/mail'), 200);
});

test('new role on one process applies on the other', async () => {
  await setPolicy(api, '');
  const readerRole = `mail-reader-${world.resourceName}`;
  assert.equal((await api.call('POST', '/roles', { name: readerRole, permissions: [{ resource: world.identifier, action: 'mail.read' }] })).status, 201);

  // The agent keeps only the new role, which grants mail.read and not pay.
  assert.equal((await api.call('POST', `/agents/${world.agentId}/roles`, { role: readerRole })).status, 200);
  assert.equal((await api.call('DELETE', `/agents/${world.agentId}/roles/${world.agentRole}`)).status, 200);
  let mark = await auditMark();
  await expectStatus(await callSecond('/mail'), 200);
  assert.deepEqual((await decisionSince(mark)).agent_roles, [readerRole], 'the new role grants mail.read');
  mark = await auditMark();
  const denied = await expectStatus(await callSecond('/payments', PAYMENT), 403);
  assert.equal(denied.error, 'insufficient_scope');
  assert.equal((await decisionSince(mark)).denied_by, 'agent_roles');

  assert.equal((await api.call('POST', `/agents/${world.agentId}/roles`, { role: world.agentRole })).status, 200);
  assert.equal((await api.call('DELETE', `/agents/${world.agentId}/roles/${readerRole}`)).status, 200);
  await expectStatus(await callSecond('/payments', PAYMENT), 200);
});
