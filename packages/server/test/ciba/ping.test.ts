import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestServer, type TestServer } from '../harness.ts';
import { createWorld, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { PING_MAX_ATTEMPTS } from '../../src/oauth/ciba/ping.ts';
import { actionDetail, assertOAuthError, backchannelRequest, cibaRequestId, cibaTokenRequest, decideOnPage, NotificationReceiver, personDecides, signInWithFetch, sleep } from './ciba-world.ts';

let server: TestServer;
let upstream: Upstream;
let admin: AdminApi;
let receiver: NotificationReceiver;

before(async () => {
  server = await startTestServer({ cibaPollIntervalSeconds: 1 });
  upstream = await startUpstream();
  admin = await adminApi(server);
  receiver = new NotificationReceiver();
  await receiver.start();
});

after(async () => {
  await receiver.close();
  await upstream.close();
  await server.stop();
});

/** Creates a world whose agent an administrator registered for ping mode through the admin API. */
async function pingWorld(): Promise<World> {
  const world = await createWorld(server, upstream.url);
  const role = await server.ctx.db.selectFrom('roles').select('name').where('id', '=', world.agentRoleId).executeTakeFirstOrThrow();
  const created = await admin.call('POST', '/agents', { name: `Ping agent ${world.resourceName}`, roles: [role.name], backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: receiver.url });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  assert.equal(created.json.backchannel_token_delivery_mode, 'ping');
  assert.equal(created.json.backchannel_client_notification_endpoint, receiver.url);
  return { ...world, agentId: String(created.json.client_id), agentSecret: String(created.json.client_secret) };
}

/** A client_notification_token with 256 random bits (CIBA Core 1.0 §7.1 requires at least 128). */
function notificationToken(): string {
  return randomBytes(32).toString('base64url');
}

function notifications(authReqId: string) {
  return receiver.received.filter((notification) => notification.body.includes(authReqId));
}

describe('CIBA ping mode (CIBA Core 1.0 §10.2)', () => {
  let world: World;

  before(async () => {
    world = await pingWorld();
  });

  test('ping mode needs client_notification_token', async () => {
    const response = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send') });
    assertOAuthError(response, 400, 'invalid_request');
    assert.match(String(response.body.error_description), /client_notification_token is missing/);

    const malformed = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send'), client_notification_token: 'has spaces in it' });
    assertOAuthError(malformed, 400, 'invalid_request', 'the token must be an RFC 6750 bearer token');
    const tooLong = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send'), client_notification_token: 'a'.repeat(1025) });
    assertOAuthError(tooLong, 400, 'invalid_request', 'CIBA Core 1.0 §7.1 limits the token to 1024 characters');
  });

  test('approval pings with the bearer token', async () => {
    const bearer = notificationToken();
    const before = receiver.received.length;
    const request = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send', { to: 'bob@example.test' }), binding_message: 'Ping A1', client_notification_token: bearer });
    assert.equal(request.status, 200, JSON.stringify(request.body));
    const authReqId = String(request.body.auth_req_id);
    assert.equal(request.body.interval, 1, 'ping mode clients get an interval too');
    await sleep(200);
    assert.equal(receiver.received.length, before, 'nothing is sent before the decision');

    await personDecides(server, world, 'Ping A1', 'approve');
    const [notification] = (await receiver.waitFor(before + 1)).slice(before);
    assert.ok(notification !== undefined);
    // CIBA Core 1.0 §10.2: a POST with the client_notification_token as bearer token and {auth_req_id} as JSON.
    assert.equal(notification.headers.authorization, `Bearer ${bearer}`);
    assert.match(String(notification.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(notification.body), { auth_req_id: authReqId });

    const issued = await cibaTokenRequest(server, world, authReqId);
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    assert.deepEqual(issued.body.authorization_details, [{ type: 'mandate_action', resource: world.identifier, action: 'send', arguments: { to: 'bob@example.test' } }]);

    await sleep(100);
    const row = await server.ctx.db.selectFrom('ciba_requests').select(['ping_secrets', 'delivery_mode']).where('client_id', '=', world.agentId).where('binding_message', '=', 'Ping A1').executeTakeFirstOrThrow();
    assert.equal(row.delivery_mode, 'ping');
    assert.equal(row.ping_secrets, null, 'the sealed auth_req_id and token are erased after delivery');
    assert.equal(server.logs.join('').includes(bearer), false, 'the notification token never reaches the log');
    assert.equal(server.logs.join('').includes(authReqId), false, 'the auth_req_id never reaches the log');
  });

  test('denial pings too', async () => {
    const before = receiver.received.length;
    const request = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send'), binding_message: 'Ping D1', client_notification_token: notificationToken() });
    const authReqId = String(request.body.auth_req_id);
    await personDecides(server, world, 'Ping D1', 'deny');

    await receiver.waitFor(before + 1);
    assert.equal(notifications(authReqId).length, 1);
    // CIBA Core 1.0 §11: the agent learns the denial at the token endpoint.
    assertOAuthError(await cibaTokenRequest(server, world, authReqId), 400, 'access_denied');
  });

  test('failed pings are retried, redirects not followed', async () => {
    const before = receiver.received.length;
    receiver.plan = [...Array.from({ length: before }, () => 204), 302, 500, 204];
    const request = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send'), binding_message: 'Ping R1', client_notification_token: notificationToken() });
    const authReqId = String(request.body.auth_req_id);
    await personDecides(server, world, 'Ping R1', 'approve');

    await receiver.waitFor(before + 3);
    const sent = notifications(authReqId);
    assert.equal(sent.length, 3, 'a 302 and a 500 count as failures; the third attempt succeeds');
    assert.ok(receiver.received.every((notification) => notification.headers.host?.startsWith('127.0.0.1')), 'the redirect was not followed');
    assert.ok((sent[1]?.receivedAt ?? 0) - (sent[0]?.receivedAt ?? 0) >= 350, 'the retry waits');
    await sleep(1500);
    assert.equal(notifications(authReqId).length, 3, 'no attempt after a success');
    receiver.plan = [];
  });

  test('retries stop after the maximum', async () => {
    const before = receiver.received.length;
    receiver.plan = [...Array.from({ length: before }, () => 204), ...Array.from({ length: PING_MAX_ATTEMPTS + 2 }, () => 500)];
    const request = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send'), binding_message: 'Ping M1', client_notification_token: notificationToken() });
    const authReqId = String(request.body.auth_req_id);
    await personDecides(server, world, 'Ping M1', 'approve');

    await receiver.waitFor(before + PING_MAX_ATTEMPTS, 15_000);
    // The attempts are spaced 0.5, 1 and 2 seconds (less up to 20%); wait past a fifth one's time.
    await sleep(4500);
    assert.equal(notifications(authReqId).length, PING_MAX_ATTEMPTS);
    assert.ok(server.logs.some((line) => line.includes('ping notification not delivered; giving up because 4 attempts failed')));
    receiver.plan = [];

    const issued = await cibaTokenRequest(server, world, authReqId);
    assert.equal(issued.status, 200, 'the agent can still poll for the token');
  });

  test('hanging endpoint does not delay the person', async () => {
    const before = receiver.received.length;
    receiver.plan = [...Array.from({ length: before }, () => 204), 'hang'];
    await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send'), binding_message: 'Ping H1', client_notification_token: notificationToken() });

    const session = await signInWithFetch(server, world.user.username);
    const requestId = await cibaRequestId(server, session, 'Ping H1');
    const started = Date.now();
    const decided = await decideOnPage(server, session, requestId, 'approve');
    const elapsed = Date.now() - started;
    assert.equal(decided.status, 303);
    assert.ok(elapsed < 2000, `the decision returned after ${elapsed} ms, while the endpoint holds the notification`);
    await receiver.waitFor(before + 1);
  });
});
