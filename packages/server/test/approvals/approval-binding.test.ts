import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { createClient } from '../../src/agents/clients.ts';
import { decideApproval } from '../../src/approvals/service.ts';
import { callGateway, createWorld, delegatedToken, startUpstream, type Upstream, type World } from '../gateway/world.ts';

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

const BODY = '{"subject":"Quarterly numbers","to":"bob@example.test","amount":1250.5}';
const JSON_HEADERS = { 'content-type': 'application/json' };

interface Rejection {
  error: string;
  error_description: string;
  approval_id?: string;
  approval_error?: string;
}

/** Makes the call that needs approval, approves it as the person, and returns the approval id. */
async function approvedCall(world: World, token: string, path = '/send/mail?to=bob', body = BODY, headers: Record<string, string> = JSON_HEADERS): Promise<string> {
  const response = await callGateway(server, world, path, { method: 'POST', token, body, headers });
  assert.equal(response.status, 403);
  const { approval_id: approvalId } = (await response.json()) as { approval_id: string };
  const decided = await decideApproval(server.ctx, { id: approvalId, userId: world.user.id, decision: 'approved' });
  assert.equal(decided.ok, true);
  return approvalId;
}

async function retry(world: World, token: string, approvalId: string, body: string, path = '/send/mail?to=bob', headers: Record<string, string> = JSON_HEADERS): Promise<Response> {
  return callGateway(server, world, path, { method: 'POST', token, body, headers: { ...headers, 'mandate-approval': approvalId } });
}

/** Creates a second agent for the same person, with the same roles; delegatedToken gives it its own delegation. */
async function secondAgent(world: World): Promise<World> {
  const agent = await createClient(server.ctx, { kind: 'agent', name: `Other Agent ${world.resourceName}` });
  await server.ctx.db.insertInto('client_roles').values({ client_id: agent.client.client_id, role_id: world.agentRoleId }).execute();
  return { ...world, agentId: agent.client.client_id, agentSecret: agent.clientSecret ?? '' };
}

describe('approval bound to arguments', () => {
  test('whitespace and member order keep it', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const approvalId = await approvedCall(world, token);

    const reordered = '{\n  "to": "bob@example.test",\n  "amount": 1250.50,\n  "subject": "Quarterly numbers"\n}';
    const before = upstream.received.length;
    const response = await retry(world, token, approvalId, reordered);
    assert.equal(response.status, 200);
    assert.equal(upstream.received.length, before + 1);
    assert.equal(upstream.received.at(-1)?.body.toString('utf8'), reordered, 'the upstream gets the bytes the agent sent');
  });

  const changed: [string, string][] = [
    ['recipient', '{"subject":"Quarterly numbers","to":"eve@example.test","amount":1250.5}'],
    ['amount', '{"subject":"Quarterly numbers","to":"bob@example.test","amount":1250.51}'],
    ['amount type', '{"subject":"Quarterly numbers","to":"bob@example.test","amount":"1250.5"}'],
    ['extra member', '{"subject":"Quarterly numbers","to":"bob@example.test","amount":1250.5,"bcc":"eve@example.test"}'],
    ['duplicate member', '{"subject":"Quarterly numbers","to":"bob@example.test","amount":1250.5,"to":"bob@example.test"}'],
  ];
  for (const [name, body] of changed) {
    test(`changed ${name} is a mismatch`, async () => {
      const world = await createWorld(server, upstream.url);
      const token = await delegatedToken(server, world);
      const approvalId = await approvedCall(world, token);

      const before = upstream.received.length;
      const response = await retry(world, token, approvalId, body);
      assert.equal(response.status, 403);
      const rejection = (await response.json()) as Rejection;
      assert.equal(rejection.error, 'access_denied');
      assert.equal(rejection.approval_error, 'mismatch');
      assert.equal(rejection.approval_id, approvalId);
      assert.equal(upstream.received.length, before);
    });
  }

  test('precision beyond a double is a mismatch', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const approvalId = await approvedCall(world, token, '/send/pay', '{"amount":9007199254740993}');

    // JSON.parse reads both as 9007199254740992, so canonical JSON alone would not tell them apart.
    const response = await retry(world, token, approvalId, '{"amount":9007199254740992}', '/send/pay');
    assert.equal(response.status, 403);
    assert.equal(((await response.json()) as Rejection).approval_error, 'mismatch');

    const exact = await retry(world, token, approvalId, '{"amount":9007199254740993}', '/send/pay');
    assert.equal(exact.status, 200);
  });

  test('non-JSON body is bound by its bytes', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const approvalId = await approvedCall(world, token, '/send/form', 'to=bob&amount=5', form);

    const spaced = await retry(world, token, approvalId, 'to=bob&amount=5 ', '/send/form', form);
    assert.equal(spaced.status, 403);
    assert.equal(((await spaced.json()) as Rejection).approval_error, 'mismatch');

    const asJson = await retry(world, token, approvalId, 'to=bob&amount=5', '/send/form', JSON_HEADERS);
    assert.equal(asJson.status, 403, 'a JSON media type changes how the arguments are bound');

    const exact = await retry(world, token, approvalId, 'to=bob&amount=5', '/send/form', form);
    assert.equal(exact.status, 200);
  });

  test('another agent cannot use it', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const approvalId = await approvedCall(world, token);

    const other = await secondAgent(world);
    const otherToken = await delegatedToken(server, other);
    const before = upstream.received.length;
    const response = await retry(other, otherToken, approvalId, BODY);
    assert.equal(response.status, 403);
    assert.equal(((await response.json()) as Rejection).approval_error, 'mismatch');
    assert.equal(upstream.received.length, before);

    const own = await retry(world, token, approvalId, BODY);
    assert.equal(own.status, 200, 'the other agent did not use up the approval');
  });

  test('rejections name the reason', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);

    const pendingResponse = await callGateway(server, world, '/send/wait', { method: 'POST', token, body: BODY, headers: JSON_HEADERS });
    const pendingId = ((await pendingResponse.json()) as { approval_id: string }).approval_id;
    const early = await retry(world, token, pendingId, BODY, '/send/wait');
    assert.equal(((await early.json()) as Rejection).approval_error, 'pending');

    await decideApproval(server.ctx, { id: pendingId, userId: world.user.id, decision: 'denied' });
    const denied = await retry(world, token, pendingId, BODY, '/send/wait');
    assert.equal(denied.status, 403);
    assert.deepEqual(await denied.json(), { error: 'access_denied', error_description: 'The approval in Mandate-Approval was denied by the person.', approval_id: pendingId, approval_error: 'denied' });

    const approvalId = await approvedCall(world, token);
    await server.ctx.db.updateTable('approvals').set({ expires_at: Math.floor(Date.now() / 1000) - 1 }).where('id', '=', approvalId).execute();
    const expired = await retry(world, token, approvalId, BODY);
    assert.equal(((await expired.json()) as Rejection).approval_error, 'expired');

    const unknown = await retry(world, token, 'apr_doesnotexist', BODY);
    assert.equal(((await unknown.json()) as Rejection).approval_error, 'not_found');
  });
});

describe('approval status endpoint', () => {
  async function status(approvalId: string, token: string | undefined, scheme = 'Bearer'): Promise<Response> {
    return fetch(`${server.issuer}/approvals/${approvalId}/status`, { headers: token === undefined ? {} : { authorization: `${scheme} ${token}` } });
  }

  test('status follows the approval', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const response = await callGateway(server, world, '/send/mail', { method: 'POST', token, body: BODY, headers: JSON_HEADERS });
    const { approval_id: approvalId } = (await response.json()) as { approval_id: string };

    const pending = await status(approvalId, token);
    assert.equal(pending.status, 200);
    assert.equal(pending.headers.get('cache-control'), 'no-store');
    const pendingBody = (await pending.json()) as { approval_id: string; status: string; expires_in: number };
    assert.equal(pendingBody.approval_id, approvalId);
    assert.equal(pendingBody.status, 'pending');
    assert.ok(pendingBody.expires_in > 0);
    assert.ok(pendingBody.expires_in <= server.ctx.config.approvalTtlSeconds);

    await decideApproval(server.ctx, { id: approvalId, userId: world.user.id, decision: 'approved' });
    assert.equal(((await (await status(approvalId, token)).json()) as { status: string }).status, 'approved');

    const used = await retry(world, token, approvalId, BODY, '/send/mail');
    assert.equal(used.status, 200);
    assert.equal(((await (await status(approvalId, token)).json()) as { status: string }).status, 'used');
  });

  test('status reports denied and expired', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const first = await callGateway(server, world, '/send/one', { method: 'POST', token, body: BODY, headers: JSON_HEADERS });
    const deniedId = ((await first.json()) as { approval_id: string }).approval_id;
    await decideApproval(server.ctx, { id: deniedId, userId: world.user.id, decision: 'denied' });
    assert.deepEqual(((await (await status(deniedId, token)).json()) as { status: string }).status, 'denied');

    const second = await callGateway(server, world, '/send/two', { method: 'POST', token, body: BODY, headers: JSON_HEADERS });
    const expiredId = ((await second.json()) as { approval_id: string }).approval_id;
    await server.ctx.db.updateTable('approvals').set({ expires_at: Math.floor(Date.now() / 1000) - 1 }).where('id', '=', expiredId).execute();
    assert.deepEqual(await (await status(expiredId, token)).json(), { approval_id: expiredId, status: 'expired', expires_in: 0 });
  });

  test('status needs the same agent and delegation', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const response = await callGateway(server, world, '/send/mail', { method: 'POST', token, body: BODY, headers: JSON_HEADERS });
    const { approval_id: approvalId } = (await response.json()) as { approval_id: string };

    const missing = await status(approvalId, undefined);
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="mandate"');

    const garbage = await status(approvalId, 'not-a-jwt');
    assert.equal(garbage.status, 401);
    assert.match(garbage.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/);

    const other = await secondAgent(world);
    const otherToken = await delegatedToken(server, other);
    const otherAgent = await status(approvalId, otherToken);
    assert.equal(otherAgent.status, 404);
    assert.deepEqual(await otherAgent.json(), { error: 'invalid_request', error_description: 'No approval with this id exists for this access token.' });

    // Another resource's token has the wrong audience (RFC 9068 §4: aud must name this resource).
    const elsewhere = await createWorld(server, upstream.url);
    const elsewhereToken = await delegatedToken(server, elsewhere);
    const wrongAudience = await status(approvalId, elsewhereToken);
    assert.equal(wrongAudience.status, 401);

    const unknown = await status('apr_doesnotexist', token);
    assert.equal(unknown.status, 404);
    const malformed = await status('not-an-id', token);
    assert.equal(malformed.status, 404);

    const revoked = await server.ctx.db.updateTable('delegations').set({ revoked_at: Math.floor(Date.now() / 1000) }).where('user_id', '=', world.user.id).where('client_id', '=', world.agentId).executeTakeFirst();
    assert.equal(Number(revoked.numUpdatedRows), 1);
    const afterRevocation = await status(approvalId, token);
    assert.equal(afterRevocation.status, 401, 'a revoked delegation makes the token invalid (RFC 6750 §3.1)');
  });
});
