import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { createWorld, delegatedToken, rawGatewayRequest, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { setPolicy } from '../policy/policy-world.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { callPdp, evaluationOf, pepToken } from './authzen-world.ts';

/*
 * The gateway and the AuthZEN API must give Cedar the same `context.path`, `context.query` and
 * `context.method` for the same call, so that one policy decides a call the same way at both. Each case sends
 * one raw path to both and compares the outcomes.
 */

const EVALUATION = '/access/v1/evaluation';
const EVALUATIONS = '/access/v1/evaluations';
const POLICY = `@id("no-secret-items")
forbid(principal, action, resource) when { context has path && context.path like "/items/secret*" };`;

let server: TestServer;
let upstream: Upstream;
let api: AdminApi;
let pep: string;
let world: World;
let token: string;

before(async () => {
  server = await startTestServer();
  upstream = await startUpstream();
  api = await adminApi(server);
  const application = await api.call('POST', '/applications', { name: 'Path PEP', redirect_uris: ['http://127.0.0.1/pep'] });
  assert.equal(application.status, 201, JSON.stringify(application.json));
  pep = await pepToken(server, { pepId: String(application.json.client_id), pepSecret: String(application.json.client_secret) });
  world = await createWorld(server, upstream.url);
  token = await delegatedToken(server, world);
  await setPolicy(api, POLICY);
});

after(async () => {
  await upstream.close();
  await server.stop();
});

/** The outcome of one call, in terms both APIs share. */
type Outcome = 'allowed' | 'denied' | 'invalid_request';

async function gatewayOutcome(rawPath: string): Promise<Outcome> {
  const response = await rawGatewayRequest(server, `/gateway/${world.resourceName}${rawPath}`, token);
  if (response.status === 200) return 'allowed';
  if (response.status === 403) return 'denied';
  assert.equal(response.status, 400, `gateway ${rawPath}: ${response.body}`);
  assert.equal((JSON.parse(response.body) as Record<string, unknown>).error, 'invalid_request', `gateway ${rawPath}`);
  return 'invalid_request';
}

async function authzenOutcome(path: string): Promise<Outcome> {
  const response = await callPdp(server, EVALUATION, evaluationOf(world, token, 'read', { method: 'GET', path }), { token: pep });
  if (response.status === 200) return response.json.decision === true ? 'allowed' : 'denied';
  assert.equal(response.status, 400, `AuthZEN ${path}: ${JSON.stringify(response.json)}`);
  assert.equal(response.json.error, 'invalid_request', `AuthZEN ${path}`);
  return 'invalid_request';
}

test('same path decision at gateway and AuthZEN', async () => {
  const cases: Array<[string, Outcome]> = [
    ['/items/public', 'allowed'],
    ['/items/secret', 'denied'],
    ['/items/%73ecret', 'denied'],
    ['/items/%73ecret%2Dplans', 'denied'],
    ['/items/caf%C3%A9', 'allowed'],
    ['/items/public/../secret', 'invalid_request'],
    ['/items/public/%2e%2e/secret', 'invalid_request'],
    ['/items/./secret', 'invalid_request'],
    ['/items//secret', 'invalid_request'],
    ['/items/public%2F..%2Fsecret', 'invalid_request'],
    ['/items/public%5Csecret', 'invalid_request'],
    ['/items/%ZZ', 'invalid_request'],
    ['/items/%00secret', 'invalid_request'],
  ];
  for (const [path, expected] of cases) {
    assert.equal(await gatewayOutcome(path), expected, `gateway ${path}`);
    assert.equal(await authzenOutcome(path), expected, `AuthZEN ${path}`);
  }
});

test('rejected path names gateway reason', async () => {
  const dots = await callPdp(server, EVALUATION, evaluationOf(world, token, 'read', { method: 'GET', path: '/items/public/../secret' }), { token: pep });
  assert.equal(dots.status, 400);
  assert.match(String(dots.json.error_description), /^context\.path is invalid because the gateway rejects such a path: .*"\.\." segments/);

  const control = await callPdp(server, EVALUATION, evaluationOf(world, token, 'read', { path: '/items/\u0001' }), { token: pep });
  assert.equal(control.status, 400);
  assert.match(String(control.json.error_description), /control characters/);

  // In a batch, the message names the evaluation whose path is rejected.
  const batch = await callPdp(
    server,
    EVALUATIONS,
    {
      subject: { type: 'mandate_access_token', id: token },
      resource: { type: 'mandate_resource', id: world.identifier },
      action: { name: 'read' },
      evaluations: [{ context: { path: '/items/public' } }, { context: { path: '/items//secret' } }],
    },
    { token: pep },
  );
  assert.equal(batch.status, 400);
  assert.equal(batch.json.error, 'invalid_request');
  assert.match(String(batch.json.error_description), /^evaluations\[1\]\.context\.path is invalid because the gateway rejects such a path: .*empty segments/);
});

test('query reaches Cedar at both', async () => {
  // Both split the query off the path: `context.path` is the path alone, and `context.query` the query as sent.
  await setPolicy(api, `${POLICY}\n@id("no-dry-run")\nforbid(principal, action, resource) when { context has query && context.query like "*mode=dry-run*" };`);
  try {
    for (const [target, expected] of [
      ['/items/public?next=/items/secret', 'allowed'],
      ['/items/secret?view=1', 'denied'],
      ['/items/public?mode=dry-run', 'denied'],
      ['/items/public?mode=live', 'allowed'],
    ] as const) {
      assert.equal(await gatewayOutcome(target), expected, `gateway ${target}`);
      assert.equal(await authzenOutcome(target), expected, `AuthZEN ${target}`);
    }
  } finally {
    await setPolicy(api, POLICY);
  }

  const credential = await callPdp(server, EVALUATION, evaluationOf(world, token, 'read', { method: 'GET', path: '/items/public?access_token=abc' }), { token: pep });
  assert.equal(credential.status, 400);
  assert.match(String(credential.json.error_description), /credential parameter access_token/);

  const fragment = await callPdp(server, EVALUATION, evaluationOf(world, token, 'read', { path: '/items/public#x' }), { token: pep });
  assert.equal(fragment.status, 400);
  assert.match(String(fragment.json.error_description), /context\.path must not contain a fragment/);
});

test('lower-case method is rejected', async () => {
  // Node's HTTP parser rejects such a request line before the gateway's route runs.
  const gateway = await rawRequestLine(`get /gateway/${world.resourceName}/items/public HTTP/1.1`);
  assert.match(gateway, /^HTTP\/1\.1 400 /);

  for (const method of ['get', 'Get', 'pOST']) {
    const response = await callPdp(server, EVALUATION, evaluationOf(world, token, 'read', { method, path: '/items/public' }), { token: pep });
    assert.equal(response.status, 400, method);
    assert.equal(response.json.error, 'invalid_request', method);
    assert.match(String(response.json.error_description), new RegExp(`^context\\.method "${method}" is not upper case\\. .* such as ${method.toUpperCase()}\\.$`), method);
  }

  const upper = await callPdp(server, EVALUATION, evaluationOf(world, token, 'read', { method: 'GET', path: '/items/public' }), { token: pep });
  assert.equal(upper.status, 200);
  assert.equal(upper.json.decision, true);
});

test('audit records decoded path', async () => {
  const before = await server.ctx.db.selectFrom('audit_log').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
  const response = await callPdp(server, EVALUATION, evaluationOf(world, token, 'read', { method: 'GET', path: '/items/%73ecret' }), { token: pep });
  assert.equal(response.status, 200);
  assert.equal(response.json.decision, false);
  assert.deepEqual((response.json.context as Record<string, unknown>).policies, ['no-secret-items']);

  const records = await readAudit(server.ctx.db, { afterSeq: Number(before?.seq ?? 0), limit: 100 });
  const entry = records.map((record) => record.event).find((event) => event.event === 'authzen.evaluation');
  assert.equal(entry?.target?.path, '/items/secret');
  assert.equal(entry?.target?.method, 'GET');
});

/** Sends one request line over a raw socket, because fetch and node:http upper-case the method. */
function rawRequestLine(requestLine: string): Promise<string> {
  const url = new URL(server.issuer);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(`${requestLine}\r\nHost: ${url.host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    });
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
  });
}

test('call of another action is denied', async () => {
  const evaluate = (action: string, context: Record<string, unknown>) => callPdp(server, EVALUATION, evaluationOf(world, token, action, context), { token: pep });
  for (const [action, context, description] of [
    ['read', { method: 'POST', path: '/items' }, /method POST is not the method of the action read/],
    ['read', { method: 'GET', path: '/send' }, /path "\/send" is outside the action read/],
    ['read', { path: '/send' }, /path "\/send" is outside the action read/],
    ['purge', { method: 'GET' }, /method GET is not the method of the action purge/],
  ] as const) {
    const response = await evaluate(action, context);
    assert.equal(response.status, 200, JSON.stringify(response.json));
    assert.equal(response.json.decision, false, `${action} ${JSON.stringify(context)}`);
    const details = response.json.context as Record<string, unknown>;
    assert.equal(details.denied_by, 'action_mismatch');
    assert.match(String(details.reason), description);
  }
  assert.equal((await evaluate('read', { method: 'GET', path: '/items/archive/1' })).json.decision, true, 'GET under /items/archive is still read');

  const query = await evaluate('read', { method: 'GET', path: '/items/public', query: 'debug=1' });
  assert.equal(query.status, 400);
  assert.match(String(query.json.error_description), /context\.query is not accepted: send the query in context\.path/);
});
