import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { sha256Hex } from '../../src/store/ids.ts';

let server: TestServer;
let api: AdminApi;

before(async () => {
  server = await startTestServer();
  api = await adminApi(server);
  const created = await api.call('POST', '/resources', {
    name: 'payments',
    identifier: 'https://payments.example.test/api',
    actions: [
      { name: 'pay', arguments: { amount: 'Long', currency: 'String', instant: 'Boolean' } },
      { name: 'read', method: 'GET' },
    ],
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
});

after(async () => {
  await server.stop();
});

const BIG_PAYMENTS = `@id("payments-above-1000")
@approval
forbid(principal, action == Action::"payments/pay", resource)
unless { context.arguments has amount && context.arguments.amount <= 1000 };
`;

test('no policy is version 0', async () => {
  const response = await api.call('GET', '/policy');
  assert.equal(response.status, 200);
  assert.equal(response.json.version, 0);
  assert.equal(response.json.source, '');
  assert.equal(response.json.created_by, null);
  assert.deepEqual(response.json.errors, []);
});

test('valid policy becomes the next version', async () => {
  const before = Number((await api.call('GET', '/policy')).json.version);

  const saved = await api.call('PUT', '/policy', { source: BIG_PAYMENTS });
  assert.equal(saved.status, 200, JSON.stringify(saved.json));
  assert.equal(saved.json.version, before + 1);
  assert.equal(saved.json.created_by, `client:${api.clientId}`);
  assert.equal(saved.json.source_sha256, sha256Hex(BIG_PAYMENTS));

  const shown = await api.call('GET', '/policy');
  assert.equal(shown.json.version, before + 1);
  assert.equal(shown.json.source, BIG_PAYMENTS);
  assert.deepEqual(shown.json.errors, []);

  const audit = await readAudit(server.ctx.db, { limit: 1000 });
  const entry = audit.map((record) => record.event).findLast((event) => event.event === 'policy.updated');
  assert.ok(entry, 'the save is audited');
  assert.equal(entry.actor, `client:${api.clientId}`);
  assert.deepEqual(entry.target, { policy_version: before + 1 });
  assert.deepEqual(entry.reason, { source_sha256: sha256Hex(BIG_PAYMENTS) });
});

test('invalid policy is rejected and the previous stays', async () => {
  const inForce = await api.call('PUT', '/policy', { source: BIG_PAYMENTS });
  const version = Number(inForce.json.version);

  const invalid: Array<[string, RegExp]> = [
    ['forbid(principal, action == Action::"payments/pay", resource)\nwhen { context.arguments.amount > 1000 };', /line 2, column 8: for policy `policy0`, unable to guarantee safety of access to optional attribute `arguments.amount`/],
    ['forbid(principal, action == Action::"payments/refund", resource);', /unrecognized action `Action::"payments\/refund"`/],
    ['forbid(principal, action, resource) when { context.arguments has currency && context.arguments.currency > 5 };', /unexpected type/],
    ['forbid(principal action resource);', /line 1, column/],
    ['@approval\npermit(principal, action, resource);', /@approval only applies to forbid policies/],
  ];
  for (const [source, message] of invalid) {
    const response = await api.call('PUT', '/policy', { source });
    assert.equal(response.status, 422, source);
    assert.match(response.type, /^application\/problem\+json/);
    assert.equal(response.json.type, 'urn:mandate:problem:invalid-policy');
    assert.equal(response.json.version_in_force, version);
    assert.match(String(response.json.detail), new RegExp(`version ${version} stays in force`));
    assert.match(String(response.json.detail), message, source);
    assert.ok(Array.isArray(response.json.errors), source);
    assert.ok((response.json.errors as unknown[]).length > 0, source);
  }

  const shown = await api.call('GET', '/policy');
  assert.equal(shown.json.version, version);
  assert.equal(shown.json.source, BIG_PAYMENTS);
  const versions = await server.ctx.db.selectFrom('policies').select('version').where('version', '>', version).execute();
  assert.deepEqual(versions, [], 'nothing was stored');
});

test('deeply nested policy is rejected', async () => {
  const inForce = await api.call('PUT', '/policy', { source: BIG_PAYMENTS });
  const version = Number(inForce.json.version);

  // 300 nested parentheses overflowed cedar-wasm's stack, and every later save then failed with 500.
  const deep = `forbid(principal, action == Action::"payments/pay", resource)\nwhen { ${'('.repeat(300)}context.arguments has amount${')'.repeat(300)} };`;
  const response = await api.call('PUT', '/policy', { source: deep });
  assert.equal(response.status, 422);
  assert.equal(response.json.type, 'urn:mandate:problem:invalid-policy');
  assert.match(String(response.json.detail), /line 2, column \d+: The policy nests more than 32 brackets deep/);
  assert.equal((await api.call('GET', '/policy')).json.version, version, 'the previous version stays in force');

  const next = await api.call('PUT', '/policy', { source: BIG_PAYMENTS.replace('1000', '2000') });
  assert.equal(next.status, 200, 'Cedar still compiles the next policy');
  assert.equal(next.json.version, version + 1);
});

test('policy body is checked', async () => {
  for (const body of [{}, { source: 5 }, { source: '', extra: true }, 'forbid(principal, action, resource);']) {
    const response = await api.call('PUT', '/policy', body);
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.match(response.type, /^application\/problem\+json/);
  }
  const huge = await api.call('PUT', '/policy', { source: `// ${'x'.repeat(256 * 1024)}` });
  assert.equal(huge.status, 400);
  assert.match(String(huge.json.detail), /source: must be at most 262144 bytes/);
});

test('empty policy removes the conditions', async () => {
  const saved = await api.call('PUT', '/policy', { source: '' });
  assert.equal(saved.status, 200);
  const shown = await api.call('GET', '/policy');
  assert.equal(shown.json.source, '');
  assert.equal(shown.json.version, saved.json.version);
});

test('impossible condition is saved with a warning', async () => {
  const saved = await api.call('PUT', '/policy', { source: 'forbid(principal, action == Action::"payments/read", resource) when { context.arguments has amount };' });
  assert.equal(saved.status, 200);
  assert.match(JSON.stringify(saved.json.warnings), /policy is impossible/);
});

test('policy needs the admin token', async () => {
  const response = await fetch(`${server.url}/admin/v1/policy`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ source: '' }) });
  assert.equal(response.status, 401);
});

test('resource actions declare typed arguments', async () => {
  const listed = await api.call('GET', '/resources');
  const payments = (listed.json.items as Array<{ name: string; actions: Array<{ name: string; arguments: unknown }> }>).find((resource) => resource.name === 'payments');
  assert.deepEqual(payments?.actions.find((action) => action.name === 'pay')?.arguments, { amount: 'Long', currency: 'String', instant: 'Boolean' });
  assert.deepEqual(payments?.actions.find((action) => action.name === 'read')?.arguments, {});

  const stored = await server.ctx.db.selectFrom('resource_actions').select('arguments').where('name', '=', 'read').executeTakeFirstOrThrow();
  assert.equal(stored.arguments, null);
});

test('invalid argument declarations are rejected', async () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ amount: 'Decimal' }, /actions\.0\.arguments\.amount: must be one of String, Long, Boolean/],
    [{ 'total-amount': 'Long' }, /actions\.0\.arguments\.total-amount: must be an identifier/],
    [{ has: 'Long' }, /arguments\.has: .*Cedar reserved word/],
    [{ __proto_x: 'Long' }, /arguments\.__proto_x: must be an identifier/],
    [{ '1st': 'Long' }, /arguments\.1st: must be an identifier/],
    [['amount'], /actions\.0\.arguments/],
    [Object.fromEntries(Array.from({ length: 51 }, (_, index) => [`a${index}`, 'Long'])), /at most 50 arguments/],
  ];
  for (const [declared, message] of cases) {
    const response = await api.call('POST', '/resources', { name: 'bad-arguments', identifier: 'https://bad.example.test/', actions: [{ name: 'x', arguments: declared }] });
    assert.equal(response.status, 400, JSON.stringify(declared));
    assert.match(String(response.json.detail), message, JSON.stringify(declared));
  }
  const names = ((await api.call('GET', '/resources')).json.items as Array<{ name: string }>).map((resource) => resource.name);
  assert.equal(names.includes('bad-arguments'), false);
});
