import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { breakAuditAppends } from '../broken-audit-log.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { issueIdToken } from '../../src/oauth/id-token.ts';
import { agentOwnToken, callGateway, createWorld, delegatedToken, rawGatewayRequest, startUpstream, UPSTREAM_CREDENTIAL, type Upstream } from './world.ts';

let server: TestServer;
let upstream: Upstream;

before(async () => {
  server = await startTestServer();
  upstream = await startUpstream();
});

after(async () => {
  await upstream.close();
  await server.stop();
});

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

async function auditEvents(name: string): Promise<Record<string, unknown>[]> {
  const records = await readAudit(server.ctx.db, { limit: 1000 });
  return records.filter((record) => record.event.event === name).map((record) => record.event as unknown as Record<string, unknown>);
}

test('gateway forwards an allowed call', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const before = upstream.received.length;

  const response = await callGateway(server, world, '/items/42?view=full', { token, headers: { cookie: 'mandate_session=secret', 'x-forwarded-for': '10.0.0.1', 'x-trace': 'keep-me' } });
  assert.equal(response.status, 200);
  const body = await json(response);
  assert.equal(body.ok, true);
  assert.equal(body.url, '/api/items/42?view=full');
  assert.equal(response.headers.get('x-upstream'), 'yes');

  assert.equal(upstream.received.length, before + 1);
  const received = upstream.received.at(-1);
  assert.equal(received?.headers.authorization, `Bearer ${UPSTREAM_CREDENTIAL}`);
  assert.equal(received?.headers.cookie, undefined);
  assert.equal(received?.headers['x-forwarded-for'], undefined);
  assert.equal(received?.headers['x-trace'], 'keep-me');

  const calls = await auditEvents('gateway.call');
  const call = calls.find((event) => event.user === world.user.id && (event.target as Record<string, unknown>).path === '/items/42?view=full');
  assert.ok(call, 'a gateway.call entry names the person and the path');
  assert.equal(call.agent, world.agentId);
  assert.deepEqual((call.target as Record<string, unknown>).action, 'read');
  assert.ok(((call.reason as Record<string, unknown>).user_roles as string[]).length > 0);

  const delegation = await server.ctx.db.selectFrom('delegations').select('last_used_at').where('user_id', '=', world.user.id).executeTakeFirstOrThrow();
  assert.notEqual(delegation.last_used_at, null);

  const results = await auditEvents('gateway.result');
  assert.ok(results.some((event) => event.user === world.user.id && (event.outcome as Record<string, unknown>).upstream_status === 200));
});

test('gateway forwards a POST body byte for byte', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const payload = '{"name":"report","size":3}';

  const response = await callGateway(server, world, '/items', { method: 'POST', token, body: payload, headers: { 'content-type': 'application/json' } });
  assert.equal(response.status, 200);
  const received = upstream.received.at(-1);
  assert.equal(received?.method, 'POST');
  assert.equal(received?.body.toString('utf8'), payload);
  assert.equal(received?.headers['content-type'], 'application/json');
});

test('gateway rejects a missing token', async () => {
  const world = await createWorld(server, upstream.url);
  const before = upstream.received.length;

  const response = await callGateway(server, world, '/items/1');
  assert.equal(response.status, 401);
  assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="mandate"');
  assert.equal((await json(response)).error, 'invalid_token');
  assert.equal(upstream.received.length, before);
});

test('gateway rejects an ID token', async () => {
  const world = await createWorld(server, upstream.url);
  const idToken = await issueIdToken(server.ctx, { user: world.user, clientId: world.applicationId, nonce: null, authTime: Math.floor(Date.now() / 1000) });

  const response = await callGateway(server, world, '/items/1', { token: idToken });
  assert.equal(response.status, 401);
  assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  assert.equal((await json(response)).error, 'invalid_token');

  const denials = await auditEvents('gateway.denied');
  const denial = denials.find((event) => (event.reason as Record<string, unknown>).check === 'token_verification' && typeof (event.reason as Record<string, unknown>).token_digest === 'string');
  assert.ok(denial, 'the denial names the token by digest');
  assert.equal(JSON.stringify(denials).includes(idToken), false);
});

test('gateway rejects a token for another resource', async () => {
  const world = await createWorld(server, upstream.url);
  const other = await createWorld(server, upstream.url);
  const tokenForOther = await delegatedToken(server, other);

  const response = await callGateway(server, world, '/items/1', { token: tokenForOther });
  assert.equal(response.status, 401);
  const body = await json(response);
  assert.equal(body.error, 'invalid_token');
  assert.match(String(body.error_description), /not meant for this resource/);
});

test('gateway rejects a non-delegated token', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await agentOwnToken(server, world);

  const response = await callGateway(server, world, '/items/1', { token });
  assert.equal(response.status, 403);
  assert.equal((await json(response)).error, 'access_denied');
});

test('gateway rejects an unknown resource', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);

  const response = await fetch(`${server.issuer}/gateway/no-such-resource/items`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 404);
  assert.equal((await json(response)).error, 'invalid_request');
});

test('gateway rejects a revoked delegation', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  assert.equal((await callGateway(server, world, '/items/1', { token })).status, 200);

  await server.ctx.db.updateTable('delegations').set({ revoked_at: Math.floor(Date.now() / 1000), revoked_reason: 'test' }).where('user_id', '=', world.user.id).execute();
  const before = upstream.received.length;
  const response = await callGateway(server, world, '/items/1', { token });
  assert.equal(response.status, 401);
  const body = await json(response);
  assert.equal(body.error, 'invalid_token');
  assert.match(String(body.error_description), /revoked/);
  assert.equal(upstream.received.length, before);
});

test('gateway rejects a disabled agent', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  await server.ctx.db.updateTable('clients').set({ status: 'disabled' }).where('client_id', '=', world.agentId).execute();

  const response = await callGateway(server, world, '/items/1', { token });
  assert.equal(response.status, 401);
  assert.equal((await json(response)).error, 'invalid_token');
});

test('gateway denies a demoted person next call', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  assert.equal((await callGateway(server, world, '/items/1', { token })).status, 200);

  await server.ctx.db.deleteFrom('user_roles').where('user_id', '=', world.user.id).execute();
  const before = upstream.received.length;
  const response = await callGateway(server, world, '/items/1', { token });
  assert.equal(response.status, 403);
  const body = await json(response);
  assert.equal(body.error, 'insufficient_scope');
  assert.match(response.headers.get('www-authenticate') ?? '', /error="insufficient_scope".*scope="read"/);
  assert.equal(upstream.received.length, before);

  const denials = await auditEvents('gateway.denied');
  assert.ok(denials.some((event) => event.user === world.user.id && (event.reason as Record<string, unknown>).denied_by === 'user_roles'));
});

test('gateway denies an unmapped request', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);

  for (const [method, path] of [
    ['GET', '/other'],
    ['PUT', '/items/1'],
    ['GET', '/itemsX'],
  ] as const) {
    const response = await callGateway(server, world, path, { method, token });
    assert.equal(response.status, 403, `${method} ${path}`);
    assert.equal((await json(response)).error, 'access_denied', `${method} ${path}`);
  }
});

test('gateway picks the longest prefix', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);

  // DELETE /items/archive/… maps to `purge`, which needs approval, not to a broader action.
  const response = await callGateway(server, world, '/items/archive/7', { method: 'DELETE', token });
  assert.equal(response.status, 403);
  assert.equal((await json(response)).error, 'approval_required');

  // An encoded letter maps to the same action, because actions are matched on decoded segments.
  const encoded = await callGateway(server, world, '/items/%61rchive/7', { method: 'DELETE', token });
  assert.equal((await json(encoded)).error, 'approval_required');
});

test('gateway rejects path traversal', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const before = upstream.received.length;
  const base = `/gateway/${world.resourceName}`;

  for (const path of ['/items/../../secret', '/items/./1', '/items/%2e%2e/secret', '/items/%2E%2E/%2E%2E/x', '/items/a%2fb', '/items/a%2Fb', '/items/a%5cb', '/items/a\\b', '/items/%00', '/items//1']) {
    const response = await rawGatewayRequest(server, `${base}${path}`, token);
    assert.equal(response.status, 400, path);
    assert.equal((JSON.parse(response.body) as Record<string, unknown>).error, 'invalid_request', path);
  }

  // Fastify's router rejects malformed percent-encoding before any route runs.
  // TODO: expect invalid_request JSON once the app maps router errors (frameworkErrors) to handleError.
  const malformed = await rawGatewayRequest(server, `${base}/items/%zz`, token);
  assert.equal(malformed.status, 400);
  assert.equal(upstream.received.length, before, 'nothing reached the upstream');
});

test('gateway forwards a body without content type', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const payload = Buffer.from([0x00, 0xff, 0x10, 0x41]);

  const response = await rawGatewayRequest(server, `/gateway/${world.resourceName}/echo/raw`, token, 'PUT', payload);
  assert.equal(response.status, 200);
  const received = upstream.received.at(-1);
  assert.equal(received?.method, 'PUT');
  assert.deepEqual(received?.body, payload);
});

test('gateway requires a stored credential', async () => {
  const world = await createWorld(server, upstream.url, { storeCredential: false });
  const token = await delegatedToken(server, world);

  const response = await callGateway(server, world, '/items/1', { token });
  assert.equal(response.status, 403);
  const body = await json(response);
  assert.equal(body.error, 'access_denied');
  assert.match(String(body.error_description), /upstream credential/);
});

test('gateway injects a named header', async () => {
  const headerUpstream = await startUpstream('x-api-key', UPSTREAM_CREDENTIAL);
  try {
    const world = await createWorld(server, headerUpstream.url, { upstreamAuth: 'header:X-Api-Key' });
    const token = await delegatedToken(server, world);

    const response = await callGateway(server, world, '/items/1', { token, headers: { 'x-api-key': 'agent-supplied' } });
    assert.equal(response.status, 200);
    const received = headerUpstream.received.at(-1);
    assert.equal(received?.headers['x-api-key'], UPSTREAM_CREDENTIAL);
    assert.equal(received?.headers.authorization, undefined);
  } finally {
    await headerUpstream.close();
  }
});

test('gateway never returns the credential', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);

  const response = await callGateway(server, world, '/echo/me?k=v', { method: 'POST', token, body: 'hello' });
  assert.equal(response.status, 200);
  const text = await response.text();
  const headers: string[] = [];
  response.headers.forEach((value, name) => headers.push(`${name}: ${value}`));

  assert.match(text, /\[redacted\]/);
  assert.equal(text.includes(UPSTREAM_CREDENTIAL), false, 'body');
  assert.equal(text.includes(encodeURIComponent(UPSTREAM_CREDENTIAL)), false, 'encoded body');
  assert.equal(headers.join('\n').includes(UPSTREAM_CREDENTIAL), false, 'headers');
  assert.equal(response.headers.get('x-echo-credential'), 'Bearer [redacted]');
  assert.equal(response.headers.get('set-cookie'), null);
  assert.equal(response.headers.get('www-authenticate'), null);
  assert.match(response.headers.get('content-security-policy') ?? '', /sandbox/);

  const logs = server.logs.join('');
  assert.equal(logs.includes(UPSTREAM_CREDENTIAL), false, 'logs');
  assert.equal(logs.includes(token), false, 'the token is not logged');
});

test('gateway answers 502 when the upstream is down', async () => {
  const downUpstream = await startUpstream();
  const world = await createWorld(server, downUpstream.url);
  const token = await delegatedToken(server, world);
  await downUpstream.close();

  const response = await callGateway(server, world, '/items/1', { token });
  assert.equal(response.status, 502);
  assert.equal((await json(response)).error, 'upstream_error');
});

test('gateway does not call upstream without audit', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const before = upstream.received.length;

  const restoreAuditLog = await breakAuditAppends(server.ctx.db);
  let response: Response;
  try {
    response = await callGateway(server, world, '/items/1', { token });
  } finally {
    await restoreAuditLog();
  }

  assert.equal(response.status, 503);
  assert.equal((await json(response)).error, 'temporarily_unavailable');
  assert.equal(upstream.received.length, before, 'nothing reached the upstream');
  assert.equal((await callGateway(server, world, '/items/1', { token })).status, 200, 'the gateway recovers with the audit log');
});
