import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { delegatedToken } from '../gateway/world.ts';
import { setPolicy } from '../policy/policy-world.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { callPdp, createAuthzenWorld, evaluationOf, pepToken, RESOURCE_TYPE, SUBJECT_TYPE, type AuthzenWorld } from './authzen-world.ts';

const EVALUATIONS = '/access/v1/evaluations';

let server: TestServer;
let api: AdminApi;
let world: AuthzenWorld;
let pep: string;
let agentToken: string;

before(async () => {
  server = await startTestServer();
  api = await adminApi(server);
  world = await createAuthzenWorld(api);
  await setPolicy(api, '');
  pep = await pepToken(server, world);
  // The token carries mail.read and pay but not mail.send.
  agentToken = await delegatedToken(server, world, 'mail.read pay');
});

after(async () => {
  await server.stop();
});

async function auditMark(): Promise<number> {
  const row = await server.ctx.db.selectFrom('audit_log').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
  return Number(row?.seq ?? 0);
}

async function auditedCount(mark: number): Promise<number> {
  const records = await readAudit(server.ctx.db, { afterSeq: mark, limit: 1000 });
  return records.filter((record) => record.event.event === 'authzen.evaluation').length;
}

/** Builds a batch with the subject and resource as top-level defaults, and one evaluation per action. */
function batch(actions: string[], semantic?: string): Record<string, unknown> {
  return {
    subject: { type: SUBJECT_TYPE, id: agentToken },
    resource: { type: RESOURCE_TYPE, id: world.identifier },
    ...(semantic === undefined ? {} : { options: { evaluations_semantic: semantic } }),
    evaluations: actions.map((name) => ({ action: { name } })),
  };
}

function decisions(json: Record<string, unknown>): Array<{ decision: boolean; context: Record<string, unknown> }> {
  assert.ok(Array.isArray(json.evaluations), 'the response lists evaluations');
  return json.evaluations as Array<{ decision: boolean; context: Record<string, unknown> }>;
}

test('execute_all by default', async () => {
  const mark = await auditMark();
  const response = await callPdp(server, EVALUATIONS, batch(['mail.read', 'mail.send', 'pay']), { token: pep });
  assert.equal(response.status, 200);
  assert.equal(response.json.decision, undefined, 'AuthZEN "The Access Evaluations API Response": no top-level decision');

  const results = decisions(response.json);
  assert.deepEqual(results.map((result) => result.decision), [true, false, true]);
  assert.equal(results[1]?.context.denied_by, 'token_scope');
  assert.equal(await auditedCount(mark), 3, 'each evaluation is audited');

  const explicit = await callPdp(server, EVALUATIONS, batch(['mail.send', 'mail.read'], 'execute_all'), { token: pep });
  assert.deepEqual(decisions(explicit.json).map((result) => result.decision), [false, true]);
});

test('deny_on_first_deny stops at the deny', async () => {
  const mark = await auditMark();
  const response = await callPdp(server, EVALUATIONS, batch(['mail.read', 'mail.send', 'pay'], 'deny_on_first_deny'), { token: pep });
  assert.equal(response.status, 200);
  assert.deepEqual(decisions(response.json).map((result) => result.decision), [true, false]);
  assert.equal(await auditedCount(mark), 2, 'the third evaluation never ran');
});

test('permit_on_first_permit stops at the permit', async () => {
  const response = await callPdp(server, EVALUATIONS, batch(['mail.send', 'pay', 'mail.read'], 'permit_on_first_permit'), { token: pep });
  assert.equal(response.status, 200);
  assert.deepEqual(decisions(response.json).map((result) => result.decision), [false, true]);

  const none = await callPdp(server, EVALUATIONS, batch(['mail.send', 'refund'], 'permit_on_first_permit'), { token: pep });
  assert.deepEqual(decisions(none.json).map((result) => result.decision), [false, false], 'without a permit every evaluation runs');
});

test('evaluation members replace defaults', async () => {
  const other = await createAuthzenWorld(api);
  const otherToken = await delegatedToken(server, other, 'mail.send');
  const response = await callPdp(
    server,
    EVALUATIONS,
    {
      subject: { type: SUBJECT_TYPE, id: agentToken },
      resource: { type: RESOURCE_TYPE, id: world.identifier },
      action: { name: 'mail.read' },
      context: { arguments: { amount: 1 } },
      evaluations: [{}, { subject: { type: SUBJECT_TYPE, id: otherToken }, resource: { type: RESOURCE_TYPE, id: other.identifier }, action: { name: 'mail.send' }, context: {} }, { action: { name: 'pay' } }],
    },
    { token: pep },
  );
  assert.equal(response.status, 200);
  const results = decisions(response.json);
  assert.deepEqual(results.map((result) => result.decision), [true, true, true]);
  assert.equal(results[1]?.context.person, other.user.id, 'the second evaluation used its own subject');
  assert.equal(results[0]?.context.person, world.user.id);
});

test('without evaluations it is a single evaluation', async () => {
  for (const body of [evaluationOf(world, agentToken, 'mail.read'), { ...evaluationOf(world, agentToken, 'mail.read'), evaluations: [] }]) {
    const response = await callPdp(server, EVALUATIONS, body, { token: pep });
    assert.equal(response.status, 200);
    assert.equal(response.json.decision, true);
    assert.equal(response.json.evaluations, undefined);
  }
});

test('batch request errors get 400', async () => {
  const mark = await auditMark();
  const cases: Array<[string, unknown, RegExp]> = [
    ['semantic', batch(['mail.read'], 'first_match'), /options\.evaluations_semantic must be one of execute_all, deny_on_first_deny, permit_on_first_permit/],
    ['options', { ...batch(['mail.read']), options: 'fast' }, /^options must be a JSON object\.$/],
    ['evaluations object', { ...batch(['mail.read']), evaluations: { action: { name: 'mail.read' } } }, /evaluations must be an array/],
    ['item not object', { ...batch(['mail.read']), evaluations: ['mail.read'] }, /^evaluations\[0\] must be a JSON object\.$/],
    ['no action anywhere', { ...batch(['mail.read']), evaluations: [{ action: { name: 'pay' } }, {}] }, /^evaluations\[1\]\.action is missing\.$/],
    ['too many', batch(Array.from({ length: 101 }, () => 'mail.read')), /has 101 entries; send at most 100/],
  ];
  for (const [label, body, description] of cases) {
    const response = await callPdp(server, EVALUATIONS, body, { token: pep });
    assert.equal(response.status, 400, label);
    assert.equal(response.json.error, 'invalid_request', label);
    assert.match(String(response.json.error_description), description, label);
  }
  assert.equal(await auditedCount(mark), 0, 'a rejected batch evaluates nothing');

  const full = await callPdp(server, EVALUATIONS, batch(Array.from({ length: 100 }, () => 'mail.read')), { token: pep });
  assert.equal(full.status, 200, 'a batch of exactly 100 is accepted');
  assert.equal(decisions(full.json).length, 100);
});
