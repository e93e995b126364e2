import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { decideApproval } from '../../src/approvals/service.ts';
import { callGateway, createWorld, delegatedToken, startUpstream, type ReceivedRequest, type Upstream, type World } from '../gateway/world.ts';
import { backchannelRequest, cibaTokenRequest, personDecides, signInWithFetch } from '../ciba/ciba-world.ts';

/*
 * A person approves one request as the approval page shows it: method, path with query, media
 * type and body. The gateway forwards such a call with only Content-Type, Accept and
 * Accept-Language of the agent's fields, so a retry cannot add fields that change what the
 * upstream does. Calls that need no approval keep every end-to-end field.
 */

let server: TestServer;
let upstream: Upstream;

before(async () => {
  server = await startTestServer({ cibaPollIntervalSeconds: 1 });
  upstream = await startUpstream();
});

after(async () => {
  await upstream.close();
  await server.stop();
});

const BODY = '{"id":77}';

/** Fields an agent adds to an approved call that the approval neither binds nor shows. */
const UNAPPROVED_FIELDS: Record<string, string> = {
  'x-refund-amount': '999999',
  prefer: 'respond-async',
  'if-match': '"v1"',
  'if-none-match': '*',
  'idempotency-key': 'key-1',
  'user-agent': 'refund-agent/1.0',
};

/** Fields that only shape the response, or that the approval binds, and that an approved call keeps. */
const KEPT_FIELDS: Record<string, string> = {
  'content-type': 'application/json',
  accept: 'application/json',
  'accept-language': 'de-CH',
};

function lastReceived(): ReceivedRequest {
  const received = upstream.received.at(-1);
  assert.ok(received !== undefined, 'the upstream received a request');
  return received;
}

function assertOnlyKeptFields(received: ReceivedRequest): void {
  for (const [name, value] of Object.entries(KEPT_FIELDS)) assert.equal(received.headers[name], value, `${name} is forwarded`);
  for (const name of Object.keys(UNAPPROVED_FIELDS)) assert.equal(received.headers[name], undefined, `${name} is not forwarded`);
  assert.equal(received.body.toString('utf8'), BODY);
}

/** Makes the call that needs approval, has the person approve it, and returns the approval id. */
async function approvedRefund(world: World, token: string): Promise<string> {
  const required = await callGateway(server, world, '/send/refunds', { method: 'POST', token, body: BODY, headers: { 'content-type': 'application/json' } });
  assert.equal(required.status, 403);
  const { approval_id: approvalId } = (await required.json()) as { approval_id: string };
  const decided = await decideApproval(server.ctx, { id: approvalId, userId: world.user.id, decision: 'approved' });
  assert.equal(decided.ok, true);
  return approvalId;
}

test('approved retry drops unapproved fields', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const approvalId = await approvedRefund(world, token);
  const before = upstream.received.length;

  const retry = await callGateway(server, world, '/send/refunds', { method: 'POST', token, body: BODY, headers: { ...KEPT_FIELDS, ...UNAPPROVED_FIELDS, 'mandate-approval': approvalId } });
  assert.equal(retry.status, 200, await retry.clone().text());
  assert.equal(upstream.received.length, before + 1);
  assertOnlyKeptFields(lastReceived());

  const audit = await readAudit(server.ctx.db, { limit: 1000 });
  const call = audit.find((record) => record.event.event === 'gateway.call' && record.event.reason?.approval_id === approvalId);
  assert.ok(call !== undefined, 'the call is audited');
  const withheld = call.event.reason?.withheld_request_fields as string[] | undefined;
  assert.ok(Array.isArray(withheld), 'the audit entry lists the fields that were not forwarded');
  for (const name of Object.keys(UNAPPROVED_FIELDS)) assert.ok(withheld.includes(name), `the audit entry names ${name}`);
  assert.ok(!withheld.includes('accept'), 'accept was forwarded');
});

test('approved retry keeps the credential', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const approvalId = await approvedRefund(world, token);

  // The agent's Authorization carries its Mandate token, so the upstream must get the stored credential instead.
  const retry = await callGateway(server, world, '/send/refunds', { method: 'POST', token, body: BODY, headers: { 'content-type': 'application/json', 'mandate-approval': approvalId } });
  assert.equal(retry.status, 200);
  const received = lastReceived();
  assert.match(String(received.headers.authorization), /^Bearer upstream-key-/);
  assert.equal(received.headers['mandate-approval'], undefined);
  assert.equal(received.headers['accept-encoding'], 'identity');
});

test('approval page names forwarded headers', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const required = await callGateway(server, world, '/send/refunds', { method: 'POST', token, body: BODY, headers: { 'content-type': 'application/json' } });
  assert.equal(required.status, 403);
  const { approval_id: approvalId } = (await required.json()) as { approval_id: string };

  const session = await signInWithFetch(server, world.user.username);
  const page = await fetch(`${server.issuer}/approvals/${approvalId}`, { headers: { cookie: session.cookie } });
  assert.equal(page.status, 200);
  const sentence = /<p id="forwarded-headers">([^<]*)<\/p>/.exec(await page.text())?.[1];
  assert.ok(sentence !== undefined, 'the page says which headers the approved call forwards');
  assert.match(sentence, /only Content-Type, Accept and Accept-Language/);
});

test('call without approval forwards custom fields', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const before = upstream.received.length;

  // `write` (POST /items) needs no approval.
  const response = await callGateway(server, world, '/items', { method: 'POST', token, body: BODY, headers: { ...KEPT_FIELDS, ...UNAPPROVED_FIELDS } });
  assert.equal(response.status, 200);
  assert.equal(upstream.received.length, before + 1);
  const received = lastReceived();
  for (const [name, value] of Object.entries({ ...KEPT_FIELDS, ...UNAPPROVED_FIELDS })) assert.equal(received.headers[name], value, `${name} is forwarded`);
});

test('CIBA approved call drops unapproved fields', async () => {
  const world = await createWorld(server, upstream.url);
  const detail = JSON.stringify([{ type: 'mandate_action', resource: world.identifier, action: 'send', method: 'POST', path: '/send/refunds', arguments: { id: 77 } }]);
  const requested = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, binding_message: 'Refund R-77', authorization_details: detail });
  assert.equal(requested.status, 200, JSON.stringify(requested.body));
  await personDecides(server, world, 'Refund R-77', 'approve');
  const issued = await cibaTokenRequest(server, world, String(requested.body.auth_req_id));
  assert.equal(issued.status, 200, JSON.stringify(issued.body));
  const token = String(issued.body.access_token);
  const before = upstream.received.length;

  const call = await callGateway(server, world, '/send/refunds', { method: 'POST', token, body: BODY, headers: { ...KEPT_FIELDS, ...UNAPPROVED_FIELDS } });
  assert.equal(call.status, 200, await call.clone().text());
  assert.equal(upstream.received.length, before + 1);
  assertOnlyKeptFields(lastReceived());
});
