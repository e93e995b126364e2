import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, createLocalJWKSet, decodeJwt, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JSONWebKeySet } from 'jose';
import { startTestServer, type TestServer } from '../harness.ts';
import { callGateway, createWorld, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { assertOAuthError, basic, cibaTokenRequest, personDecides, requestSend, signInWithFetch, sleep } from './ciba-world.ts';

/** The interval the server announces; short, so the test can wait it out. */
const INTERVAL_SECONDS = 1;

let server: TestServer;
let upstream: Upstream;

before(async () => {
  server = await startTestServer({ cibaPollIntervalSeconds: INTERVAL_SECONDS });
  upstream = await startUpstream();
});

after(async () => {
  await upstream.close();
  await server.stop();
});

async function auditEvents(name: string): Promise<Record<string, unknown>[]> {
  const rows = await server.ctx.db.selectFrom('audit_log').select('entry').orderBy('seq').execute();
  return rows.map((row) => JSON.parse(row.entry) as Record<string, unknown>).filter((entry) => entry.event === name);
}

async function jwks(): Promise<ReturnType<typeof createLocalJWKSet>> {
  const response = await fetch(`${server.issuer}/jwks`);
  return createLocalJWKSet((await response.json()) as JSONWebKeySet);
}

describe('CIBA poll mode (CIBA Core 1.0 §7, §10.1, §11)', () => {
  const ARGUMENTS = { to: 'bob@example.test', amount: 250, memo: { reference: 'INV-7', lines: [1, 2.5] } };
  let world: World;
  let auth: { auth_req_id: string; expires_in: number; interval: number };
  let token: Record<string, unknown>;

  before(async () => {
    world = await createWorld(server, upstream.url);
  });

  test('request returns auth_req_id, expires_in, interval', async () => {
    auth = await requestSend(server, world, ARGUMENTS, { binding_message: 'Code PX-41' });
    // CIBA Core 1.0 §7.3: auth_req_id with at least 128 bits, expires_in and interval.
    assert.match(auth.auth_req_id, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(auth.expires_in, 300, 'the configured default lifetime');
    assert.equal(auth.interval, INTERVAL_SECONDS);

    const stored = await server.ctx.db.selectFrom('ciba_requests').selectAll().where('user_id', '=', world.user.id).executeTakeFirstOrThrow();
    assert.notEqual(stored.auth_req_id_hash, auth.auth_req_id, 'only the hash is stored');
    assert.equal(JSON.stringify(stored).includes(auth.auth_req_id), false, 'the auth_req_id appears nowhere in the row');
  });

  test('polls: pending, then slow_down', async () => {
    // CIBA Core 1.0 §11: authorization_pending while the person has not decided.
    const first = await cibaTokenRequest(server, world, auth.auth_req_id);
    assertOAuthError(first, 400, 'authorization_pending');
    assert.equal(first.headers.get('cache-control'), 'no-store');

    // §11: slow_down when polled sooner than the interval.
    const tooSoon = await cibaTokenRequest(server, world, auth.auth_req_id);
    assertOAuthError(tooSoon, 400, 'slow_down');
    assert.match(String(tooSoon.body.error_description), /at least 6 seconds/, 'the interval grew by 5 seconds');

    // After the original interval the poll is still too soon, because the interval is now 6 seconds.
    await sleep(INTERVAL_SECONDS * 1000 + 300);
    const stillTooSoon = await cibaTokenRequest(server, world, auth.auth_req_id);
    assertOAuthError(stillTooSoon, 400, 'slow_down', 'the longer interval applies to every later request');
    assert.match(String(stillTooSoon.body.error_description), /at least 11 seconds/);
  });

  test('poll at the interval stays pending', async () => {
    const other = await requestSend(server, world, { to: 'carol@example.test' }, { binding_message: 'Code PX-42' });
    assertOAuthError(await cibaTokenRequest(server, world, other.auth_req_id), 400, 'authorization_pending');
    await sleep(other.interval * 1000 + 100);
    assertOAuthError(await cibaTokenRequest(server, world, other.auth_req_id), 400, 'authorization_pending', 'a poll after the interval is not slow_down');
  });

  test('inbox lists the request, labelled', async () => {
    const session = await signInWithFetch(server, world.user.username);
    const html = await (await fetch(`${server.issuer}/approvals`, { headers: { cookie: session.cookie } })).text();
    assert.match(html, /<li class="approval backchannel" id="approval-cib_[^"]+"><p class="label">Approval in advance \(OpenID CIBA\)<\/p>/);
    assert.match(html, /<strong class="binding-message-text">Code PX-41<\/strong>/);
    assert.match(html, /asks in advance to <code class="action">send<\/code> on <span class="resource">Files /);
    assert.match(html, /&quot;to&quot;: &quot;bob@example.test&quot;/, 'the inbox shows the approved arguments');
  });

  test('approval on the page issues the token once', async () => {
    const requestId = await personDecides(server, world, 'Code PX-41', 'approve');
    const row = await server.ctx.db.selectFrom('ciba_requests').selectAll().where('id', '=', requestId).executeTakeFirstOrThrow();
    assert.equal(row.status, 'approved');

    // An approved request is redeemed at once, even within the interval: slow_down is a variant of pending.
    const issued = await cibaTokenRequest(server, world, auth.auth_req_id);
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    token = issued.body;
    assert.equal(token.token_type, 'Bearer');
    assert.equal(token.scope, 'openid send');
    assert.equal(token.expires_in, 600);
    assert.equal(token.refresh_token, undefined, 'an advance approval gives no refresh token');
    // RFC 9396 §7: the token response carries the details exactly as approved.
    assert.deepEqual(token.authorization_details, [{ type: 'mandate_action', resource: world.identifier, action: 'send', arguments: ARGUMENTS }]);

    // CIBA Core 1.0 §11: a spent auth_req_id is invalid_grant.
    assertOAuthError(await cibaTokenRequest(server, world, auth.auth_req_id), 400, 'invalid_grant', 'the auth_req_id is single use');
  });

  test('access token acts for the person', async () => {
    const keys = await jwks();
    const { payload, protectedHeader } = await jwtVerify(String(token.access_token), keys, { issuer: server.issuer, audience: world.identifier, typ: 'at+jwt' });
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.sub, world.user.id);
    assert.deepEqual(payload.act, { sub: world.agentId });
    assert.equal(payload.client_id, world.agentId);
    assert.equal(payload.scope, 'openid send');
    // RFC 9396 §9.1: the JWT carries authorization_details as approved.
    assert.deepEqual(payload.authorization_details, [{ type: 'mandate_action', resource: world.identifier, action: 'send', arguments: ARGUMENTS }]);

    const delegation = await server.ctx.db.selectFrom('delegations').selectAll().where('id', '=', String(payload.delegation_id)).executeTakeFirstOrThrow();
    assert.equal(delegation.source, 'ciba');
    assert.equal(delegation.scope, 'send', 'the delegation is limited to the approved action');
    assert.equal(delegation.user_id, world.user.id);
    assert.equal(delegation.client_id, world.agentId);

    // CIBA Core 1.0 §10.1.1: an ID token for the person, for the agent.
    const idToken = await jwtVerify(String(token.id_token), keys, { issuer: server.issuer, audience: world.agentId });
    assert.equal(idToken.payload.sub, world.user.id);
    assert.equal(typeof idToken.payload.auth_time, 'number');
  });

  test('introspection returns the details', async () => {
    const response = await fetch(`${server.issuer}/introspect`, {
      method: 'POST',
      headers: { authorization: basic(world.agentId, world.agentSecret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: String(token.access_token) }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(body.active, true);
    // RFC 9396 §9.2
    assert.deepEqual(body.authorization_details, [{ type: 'mandate_action', resource: world.identifier, action: 'send', arguments: ARGUMENTS }]);
  });

  test('gateway refuses other arguments', async () => {
    const before = upstream.received.length;
    const other = await callGateway(server, world, '/send/payment', { method: 'POST', token: String(token.access_token), body: JSON.stringify({ ...ARGUMENTS, amount: 25_000 }), headers: { 'content-type': 'application/json' } });
    assert.equal(other.status, 403);
    const body = (await other.json()) as Record<string, unknown>;
    assert.equal(body.error, 'access_denied');
    assert.match(String(body.error_description), /differ from those the person approved/);

    const duplicated = await callGateway(server, world, '/send/payment', { method: 'POST', token: String(token.access_token), body: '{"to":"eve@example.test","to":"bob@example.test","amount":250,"memo":{"reference":"INV-7","lines":[1,2.5]}}', headers: { 'content-type': 'application/json' } });
    assert.equal(duplicated.status, 403, 'a body that parsers read differently never matches');
    const notJson = await callGateway(server, world, '/send/payment', { method: 'POST', token: String(token.access_token), body: JSON.stringify(ARGUMENTS), headers: { 'content-type': 'text/plain' } });
    assert.equal(notJson.status, 403, 'the arguments must be a JSON body');
    assert.equal(upstream.received.length, before, 'nothing reached the upstream');
  });

  test('gateway allows approved arguments once', async () => {
    // The same JSON value with other member order and spacing: RFC 8785 canonical forms are equal.
    const reordered = '{ "memo": {"lines": [1, 2.50], "reference": "INV-7"}, "amount": 250, "to": "bob@example.test" }';
    const before = upstream.received.length;
    const call = await callGateway(server, world, '/send/payment', { method: 'POST', token: String(token.access_token), body: reordered, headers: { 'content-type': 'application/json' } });
    assert.equal(call.status, 200, await call.clone().text());
    assert.equal(upstream.received.length, before + 1);
    assert.equal(upstream.received.at(-1)?.url, '/api/send/payment');

    // `send` needs the person's approval; the advance approval counts for one call.
    const again = await callGateway(server, world, '/send/payment', { method: 'POST', token: String(token.access_token), body: reordered, headers: { 'content-type': 'application/json' } });
    assert.equal(again.status, 403);
    assert.equal(((await again.json()) as Record<string, unknown>).error, 'approval_required', 'a second call asks the person again');
    assert.equal(upstream.received.length, before + 1);

    const calls = (await auditEvents('gateway.call')).filter((entry) => (entry.agent as string) === world.agentId);
    assert.match(String((calls.at(-1)?.reason as Record<string, unknown>).approval_id), /^cib_/, 'the call names the CIBA request as its approval');
  });

  test('gateway refuses actions outside the token', async () => {
    const read = await callGateway(server, world, '/items', { token: String(token.access_token) });
    assert.equal(read.status, 403);
    assert.equal(((await read.json()) as Record<string, unknown>).error, 'insufficient_scope');
  });

  test('token cannot be exchanged', async () => {
    const response = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic(world.agentId, world.agentSecret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: String(token.access_token), subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(response.status, 400);
    assert.equal(body.error, 'invalid_request', 'an exchange would drop the approved arguments');
  });

  test('audit records request, decision and token', async () => {
    const requested = (await auditEvents('ciba.requested')).filter((entry) => entry.agent === world.agentId);
    assert.equal(requested.length, 2);
    assert.equal((requested[0]?.reason as Record<string, unknown>).binding_message, 'Code PX-41');
    const decided = (await auditEvents('ciba.decided')).filter((entry) => entry.agent === world.agentId);
    assert.deepEqual(decided.map((entry) => (entry.outcome as Record<string, unknown>).decision), ['approved']);
    const issued = (await auditEvents('token.issued')).filter((entry) => (entry.reason as Record<string, unknown>).grant_type === 'urn:openid:params:grant-type:ciba' && entry.agent === world.agentId);
    assert.equal(issued.length, 1);
    assert.equal(JSON.stringify(issued).includes(String(token.access_token)), false, 'the audit log has no token');
  });

  test('DPoP proof binds the token', async () => {
    const bound = await requestSend(server, world, { to: 'dave@example.test' }, { binding_message: 'Code DP-1' });
    await personDecides(server, world, 'Code DP-1', 'approve');

    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const proof = await new SignJWT({ jti: randomUUID(), htm: 'POST', htu: `${server.issuer}/token`, iat: Math.floor(Date.now() / 1000) }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(privateKey);
    const response = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic(world.agentId, world.agentSecret), 'content-type': 'application/x-www-form-urlencoded', dpop: proof },
      body: new URLSearchParams({ grant_type: 'urn:openid:params:grant-type:ciba', auth_req_id: bound.auth_req_id }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(response.status, 200, JSON.stringify(body));
    // RFC 9449 §5: a token issued with a proof is of type DPoP and names the key's thumbprint.
    assert.equal(body.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(String(body.access_token)).cnf, { jkt: await calculateJwkThumbprint(jwk) });
  });

  test('scope without details issues scopes', async () => {
    const scoped = await fetch(`${server.issuer}/bc-authorize`, {
      method: 'POST',
      headers: { authorization: basic(world.agentId, world.agentSecret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ scope: 'openid read write', resource: world.identifier, login_hint: world.user.username, binding_message: 'Code SC-1' }),
    });
    assert.equal(scoped.status, 200);
    const { auth_req_id: authReqId } = (await scoped.json()) as { auth_req_id: string };
    await personDecides(server, world, 'Code SC-1', 'approve');

    const issued = await cibaTokenRequest(server, world, authReqId);
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    assert.equal(issued.body.scope, 'openid read write');
    assert.equal(issued.body.authorization_details, undefined);
    const claims = decodeJwt(String(issued.body.access_token));
    assert.equal(claims.authorization_details, undefined);
    assert.equal(claims.aud, world.identifier);

    const read = await callGateway(server, world, '/items', { token: String(issued.body.access_token) });
    assert.equal(read.status, 200, 'a scope token calls its actions as any delegated token does');
  });
});
