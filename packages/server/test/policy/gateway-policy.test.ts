import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { callGateway, delegatedToken, startUpstream, type Upstream } from '../gateway/world.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { tokenDigest } from '../../src/audit/log.ts';
import { decideApproval } from '../../src/approvals/service.ts';
import { sha256Hex } from '../../src/store/ids.ts';
import { canonicalJson } from '../../src/util/canonical-json.ts';
import type { AuditEvent } from '../../src/audit/entry.ts';
import { createPolicyWorld, setPolicy, type PolicyWorld } from './policy-world.ts';

let server: TestServer;
let upstream: Upstream;
let api: AdminApi;

before(async () => {
  server = await startTestServer();
  upstream = await startUpstream();
  api = await adminApi(server);
});

after(async () => {
  await upstream.close();
  await server.stop();
});

const JSON_TYPE = { 'content-type': 'application/json' };

async function auditMark(): Promise<number> {
  const row = await server.ctx.db.selectFrom('audit_log').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
  return Number(row?.seq ?? 0);
}

async function auditSince(mark: number, event: string): Promise<AuditEvent[]> {
  const records = await readAudit(server.ctx.db, { afterSeq: mark, limit: 1000 });
  return records.map((record) => record.event).filter((entry) => entry.event === event);
}

function decisionOf(entry: AuditEvent | undefined): Record<string, unknown> {
  assert.ok(entry, 'the call has an audit entry');
  const decision = entry.reason?.policy_decision;
  assert.equal(typeof decision, 'object', 'the audit entry carries the decision');
  assert.notEqual(decision, null, 'the audit entry carries the decision');
  return decision as Record<string, unknown>;
}

function pay(world: PolicyWorld, token: string, body: string, headers: Record<string, string> = JSON_TYPE): Promise<Response> {
  return callGateway(server, world, '/payments', { method: 'POST', token, body, headers });
}

test('payments above 1000 need approval', async () => {
  const world = await createPolicyWorld(api, upstream.url);
  const token = await delegatedToken(server, world, 'pay mail.send mail.read refund');
  const version = await setPolicy(
    api,
    `@id("payments-above-1000")
@approval
forbid(principal, action == Action::"${world.resourceName}/pay", resource)
unless { context.arguments has amount && context.arguments.amount <= 1000 };`,
  );

  const small = await pay(world, token, '{"amount":1000,"currency":"EUR"}');
  assert.equal(small.status, 200);

  const mark = await auditMark();
  const before = upstream.received.length;
  const big = await pay(world, token, '{"amount":5000,"currency":"EUR"}');
  assert.equal(big.status, 403);
  const required = (await big.json()) as { error: string; approval_id: string };
  assert.equal(required.error, 'approval_required');
  assert.equal(upstream.received.length, before, 'nothing reached the upstream');

  const requested = await auditSince(mark, 'approval.requested');
  const decision = decisionOf(requested.at(-1));
  assert.equal(decision.result, 'approval_required');
  assert.equal(decision.policy_version, version);
  assert.deepEqual(decision.approval_required_by, ['payments-above-1000']);

  const repeatMark = await auditMark();
  const repeat = await pay(world, token, '{"amount":5000,"currency":"EUR"}');
  assert.equal(repeat.status, 403);
  assert.equal(((await repeat.json()) as { approval_id: string }).approval_id, required.approval_id, 'the pending approval is reused');
  const repeated = (await auditSince(repeatMark, 'gateway.denied')).at(-1);
  assert.equal(repeated?.reason?.check, 'approval');
  assert.equal(decisionOf(repeated).result, 'approval_required', 'the repeated decision is audited too');

  const decided = await decideApproval(server.ctx, { id: required.approval_id, userId: world.user.id, decision: 'approved' });
  assert.equal(decided.ok, true);
  const approved = await pay(world, token, '{"amount":5000,"currency":"EUR"}', { ...JSON_TYPE, 'mandate-approval': required.approval_id });
  assert.equal(approved.status, 200);
  assert.equal(upstream.received.at(-1)?.body.toString('utf8'), '{"amount":5000,"currency":"EUR"}');
});

test('missing amount needs approval too', async () => {
  const world = await createPolicyWorld(api, upstream.url);
  const token = await delegatedToken(server, world, 'pay');
  await setPolicy(api, `@approval\nforbid(principal, action == Action::"${world.resourceName}/pay", resource)\nunless { context.arguments has amount && context.arguments.amount <= 1000 };`);

  // The condition is written so that a JSON object without the amount needs approval.
  const response = await pay(world, token, '{"currency":"EUR"}', JSON_TYPE);
  assert.equal(response.status, 403);
  assert.equal(((await response.json()) as { error: string }).error, 'approval_required');
  assert.equal((await pay(world, token, '{"amount":5}', { 'content-type': 'application/vnd.payments+json; charset=utf-8' })).status, 200, 'a +json type carries arguments');
});

test('unreadable body is denied', async () => {
  const world = await createPolicyWorld(api, upstream.url);
  const token = await delegatedToken(server, world, 'pay');
  // A `when` condition cannot see arguments in a body that is not a JSON object, so such a body is denied outright.
  await setPolicy(api, `@approval\nforbid(principal, action == Action::"${world.resourceName}/pay", resource)\nwhen { context.arguments has amount && context.arguments.amount > 1000 };`);

  for (const [body, headers] of [
    ['{"amount":5000}', { 'content-type': 'text/plain' }],
    ['{"amount":5000}', {}],
    ['{"amount":5000', JSON_TYPE],
    ['[{"amount":5000}]', JSON_TYPE],
  ] as const) {
    const response = await pay(world, token, body, headers);
    assert.equal(response.status, 403, body);
    assert.equal(((await response.json()) as { error: string }).error, 'access_denied', body);
  }
  const sent = upstream.received.length;
  assert.equal((await pay(world, token, '{"amount":5000}', JSON_TYPE)).status, 403, 'a readable amount above 1000 needs approval');
  assert.equal(upstream.received.length, sent, 'nothing reached the upstream');
});

test('mail only to the company domain', async () => {
  const world = await createPolicyWorld(api, upstream.url);
  const token = await delegatedToken(server, world, 'pay mail.send');
  await setPolicy(
    api,
    `@id("company-mail-only")
forbid(principal, action == Action::"${world.resourceName}/mail.send", resource)
unless { context.arguments has to && context.arguments.to like "*@example.com" };`,
  );

  const inside = await callGateway(server, world, '/mail', { method: 'POST', token, body: '{"to":"bob@example.com","urgent":false}', headers: JSON_TYPE });
  assert.equal(inside.status, 200);

  const mark = await auditMark();
  const before = upstream.received.length;
  for (const to of ['eve@evil.test', 'bob@example.com.evil.test', 'bob@EXAMPLE.COM']) {
    const outside = await callGateway(server, world, '/mail', { method: 'POST', token, body: JSON.stringify({ to }), headers: JSON_TYPE });
    assert.equal(outside.status, 403, to);
    const body = (await outside.json()) as { error: string; error_description: string };
    assert.equal(body.error, 'access_denied', to);
    assert.match(body.error_description, /A policy forbids this call of mail\.send/, to);
  }
  assert.equal(upstream.received.length, before, 'nothing reached the upstream');

  const denials = await auditSince(mark, 'gateway.denied');
  assert.equal(denials.length, 3);
  const decision = decisionOf(denials[0]);
  assert.equal(decision.result, 'deny');
  assert.equal(decision.denied_by, 'policy');
  assert.deepEqual(decision.policies, ['company-mail-only']);
  assert.deepEqual((decision.inputs as Record<string, unknown>).arguments, { to: 'eve@evil.test' });
  assert.equal(denials[0]?.reason?.denied_by, 'policy');
});

test('plain forbid beats approval', async () => {
  const world = await createPolicyWorld(api, upstream.url);
  const token = await delegatedToken(server, world, 'pay');
  await setPolicy(
    api,
    `@id("needs-approval")
@approval
forbid(principal, action == Action::"${world.resourceName}/pay", resource);

@id("never-above-100000")
forbid(principal, action == Action::"${world.resourceName}/pay", resource)
when { context.arguments has amount && context.arguments.amount > 100000 };`,
  );

  const mark = await auditMark();
  const response = await pay(world, token, '{"amount":250000}');
  assert.equal(response.status, 403);
  assert.equal(((await response.json()) as { error: string }).error, 'access_denied');
  assert.deepEqual(decisionOf((await auditSince(mark, 'gateway.denied')).at(-1)).policies, ['never-above-100000']);
  assert.equal(await server.ctx.db.selectFrom('approvals').select('id').where('user_id', '=', world.user.id).executeTakeFirst(), undefined, 'no approval was requested');
});

test('argument of the wrong type denies', async () => {
  const world = await createPolicyWorld(api, upstream.url);
  const token = await delegatedToken(server, world, 'pay mail.send');
  await setPolicy(api, `forbid(principal, action == Action::"${world.resourceName}/pay", resource)\nwhen { context.arguments has amount && context.arguments.amount > 1000 };`);
  const before = upstream.received.length;

  const cases: Array<[string, RegExp]> = [
    ['{"amount":"5000"}', /argument amount must be a JSON integer/],
    ['{"amount":5000.5}', /argument amount must be a JSON integer/],
    ['{"amount":9007199254740993}', /outside that range/],
    ['{"amount":5,"amount":5000}', /amount occurs more than once/],
    ['{"amount":{"value":5000}}', /not an object/],
  ];
  for (const [body, description] of cases) {
    const response = await pay(world, token, body);
    assert.equal(response.status, 403, body);
    const error = (await response.json()) as { error: string; error_description: string };
    assert.equal(error.error, 'access_denied', body);
    assert.match(error.error_description, description, body);
  }
  const urgent = await callGateway(server, world, '/mail', { method: 'POST', token, body: '{"to":"a@example.com","urgent":"yes"}', headers: JSON_TYPE });
  assert.equal(urgent.status, 403);
  assert.equal(upstream.received.length, before, 'nothing reached the upstream');

  assert.equal((await pay(world, token, '{"amount":5,"memo":{"any":["thing"]},"memo":1}')).status, 200, 'undeclared members, even repeated, are not checked');
});

test('role changes apply to the next call', async () => {
  const world = await createPolicyWorld(api, upstream.url);
  const token = await delegatedToken(server, world, 'pay mail.read');
  await setPolicy(api, '');
  assert.equal((await callGateway(server, world, '/mail', { token })).status, 200);

  const revokedPerson = await api.call('DELETE', `/users/${world.user.id}/roles/${world.userRole}`);
  assert.equal(revokedPerson.status, 200);
  const mark = await auditMark();
  const denied = await callGateway(server, world, '/mail', { token });
  assert.equal(denied.status, 403);
  assert.equal(((await denied.json()) as { error: string }).error, 'insufficient_scope');
  assert.equal(decisionOf((await auditSince(mark, 'gateway.denied')).at(-1)).denied_by, 'user_roles');

  assert.equal((await api.call('POST', `/users/${world.user.id}/roles`, { role: world.userRole })).status, 200);
  assert.equal((await callGateway(server, world, '/mail', { token })).status, 200, 'the restored role applies at once');

  assert.equal((await api.call('DELETE', `/agents/${world.agentId}/roles/${world.agentRole}`)).status, 200);
  const agentMark = await auditMark();
  assert.equal((await callGateway(server, world, '/mail', { token })).status, 403);
  assert.equal(decisionOf((await auditSince(agentMark, 'gateway.denied')).at(-1)).denied_by, 'agent_roles');
});

test('policy changes apply to the next call', async () => {
  const world = await createPolicyWorld(api, upstream.url);
  const token = await delegatedToken(server, world, 'mail.read');
  await setPolicy(api, '');
  assert.equal((await callGateway(server, world, '/mail', { token })).status, 200);

  await setPolicy(api, `forbid(principal, action == Action::"${world.resourceName}/mail.read", resource);`);
  assert.equal((await callGateway(server, world, '/mail', { token })).status, 403);

  await setPolicy(api, `forbid(principal, action == Action::"${world.resourceName}/mail.read", resource) when { context has path && context.path like "/mail/secret*" };`);
  assert.equal((await callGateway(server, world, '/mail/inbox', { token })).status, 200);
  assert.equal((await callGateway(server, world, '/mail/secret/1', { token })).status, 403);
});

test('stored policy that no longer compiles denies', async () => {
  const world = await createPolicyWorld(api, upstream.url);
  const token = await delegatedToken(server, world, 'mail.read');
  const good = await setPolicy(api, '');

  // A stored version that fails validation (for example after an upgrade); the admin API never saves one.
  await server.ctx.db.insertInto('policies').values({ tenant_id: server.ctx.tenantId, version: good + 1, source: 'forbid(principal, action == Action::"gone/away", resource);', created_at: 0, created_by: 'test' }).execute();
  const mark = await auditMark();
  const response = await callGateway(server, world, '/mail', { token });
  assert.equal(response.status, 403);
  const body = (await response.json()) as { error: string; error_description: string };
  assert.equal(body.error, 'access_denied');
  assert.match(body.error_description, /could not evaluate its policy/);

  const decision = decisionOf((await auditSince(mark, 'gateway.denied')).at(-1));
  assert.equal(decision.denied_by, 'policy_error');
  assert.equal(decision.policy_version, good + 1);
  assert.match(JSON.stringify(decision.errors), /unrecognized action/);
  assert.ok(server.logs.some((line) => line.includes('the stored policy does not compile') && line.includes('unrecognized action')), 'the log says why');

  await setPolicy(api, '');
  assert.equal((await callGateway(server, world, '/mail', { token })).status, 200, 'a corrected policy restores calls');
});

test('decision is audited with its inputs', async () => {
  const world = await createPolicyWorld(api, upstream.url);
  const token = await delegatedToken(server, world, 'pay mail.read');
  const version = await setPolicy(api, `forbid(principal, action == Action::"${world.resourceName}/pay", resource) when { context.arguments has amount && context.arguments.amount > 1000 };`);
  const body = { currency: 'EUR', amount: 40, memo: 'rent' };

  const mark = await auditMark();
  assert.equal((await pay(world, token, JSON.stringify(body))).status, 200);
  const [call] = await auditSince(mark, 'gateway.call');
  const decision = decisionOf(call);
  assert.equal(decision.result, 'allow');
  assert.equal(decision.policy_version, version);
  assert.deepEqual(decision.user_roles, [world.userRole]);
  assert.deepEqual(decision.agent_roles, [world.agentRole]);
  assert.deepEqual(decision.errors, []);

  const inputs = decision.inputs as Record<string, unknown>;
  assert.equal(inputs.token_digest, tokenDigest(token));
  assert.deepEqual(inputs.token_scope, ['mail.read', 'pay']);
  // RFC 8785: the digest covers every member, in canonical order, and the values are those the policy saw.
  assert.equal(inputs.arguments_sha256, sha256Hex(canonicalJson(body)));
  assert.deepEqual(inputs.arguments, { currency: 'EUR', amount: 40 });

  const entries = await readAudit(server.ctx.db, { afterSeq: mark, limit: 1000 });
  assert.equal(JSON.stringify(entries).includes(token), false, 'the token itself is never stored');
});
