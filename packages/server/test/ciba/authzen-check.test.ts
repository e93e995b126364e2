import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { callGateway, createWorld, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { callPdp, evaluationOf, pepToken } from '../authzen/authzen-world.ts';
import { backchannelRequest, cibaTokenRequest, personDecides } from './ciba-world.ts';

/*
 * An AuthZEN evaluation asks whether a call would be allowed. It must not use up the person's
 * advance approval, which belongs to the gateway call that follows.
 */

const EVALUATION = '/access/v1/evaluation';

let server: TestServer;
let upstream: Upstream;
let api: AdminApi;
let pep: string;

before(async () => {
  server = await startTestServer({ cibaPollIntervalSeconds: 1 });
  upstream = await startUpstream();
  api = await adminApi(server);
  const application = await api.call('POST', '/applications', { name: 'Evaluating PEP', redirect_uris: ['http://127.0.0.1/pep'] });
  assert.equal(application.status, 201, JSON.stringify(application.json));
  pep = await pepToken(server, { pepId: String(application.json.client_id), pepSecret: String(application.json.client_secret) });
});

after(async () => {
  await upstream.close();
  await server.stop();
});

/** Asks for the detail through CIBA, has the person approve it, and returns the access token. */
async function approvedToken(world: World, members: Record<string, unknown>, bindingMessage: string): Promise<string> {
  const authorizationDetails = JSON.stringify([{ type: 'mandate_action', resource: world.identifier, ...members }]);
  const requested = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, binding_message: bindingMessage, authorization_details: authorizationDetails });
  assert.equal(requested.status, 200, JSON.stringify(requested.body));
  await personDecides(server, world, bindingMessage, 'approve');
  const issued = await cibaTokenRequest(server, world, String(requested.body.auth_req_id));
  assert.equal(issued.status, 200, JSON.stringify(issued.body));
  return String(issued.body.access_token);
}

async function approvalUsedAt(world: World): Promise<number | null> {
  const row = await server.ctx.db.selectFrom('ciba_requests').select('approval_used_at').where('client_id', '=', world.agentId).where('status', '=', 'issued').executeTakeFirstOrThrow();
  return row.approval_used_at === null ? null : Number(row.approval_used_at);
}

test('evaluation leaves the advance approval unused', async () => {
  const world = await createWorld(server, upstream.url);
  const message = { to: 'bob@example.test', text: 'Invoice paid' };
  const token = await approvedToken(world, { action: 'send', arguments: message }, 'Send S-1');

  for (const attempt of [1, 2]) {
    const evaluated = await callPdp(server, EVALUATION, evaluationOf(world, token, 'send', { arguments: message, method: 'POST', path: '/send/mail' }), { token: pep });
    assert.equal(evaluated.status, 200);
    assert.equal(evaluated.json.decision, true, `evaluation ${attempt}: the unused advance approval covers the call`);
    assert.match(String((evaluated.json.context as Record<string, unknown>).approval_id), /^cib_/);
  }
  assert.equal(await approvalUsedAt(world), null, 'no evaluation used the approval');

  const before = upstream.received.length;
  const call = await callGateway(server, world, '/send/mail', { method: 'POST', token, body: JSON.stringify(message), headers: { 'content-type': 'application/json' } });
  assert.equal(call.status, 200, await call.clone().text());
  assert.equal(upstream.received.length, before + 1, 'the gateway call used the advance approval');
  assert.notEqual(await approvalUsedAt(world), null);

  const after = await callPdp(server, EVALUATION, evaluationOf(world, token, 'send', { arguments: message }), { token: pep });
  assert.equal(after.json.decision, false, 'once the gateway used it, the approval no longer covers a call');
  assert.equal((after.json.context as Record<string, unknown>).result, 'approval_required');
});

test('evaluation checks a bound path', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await approvedToken(world, { action: 'purge', method: 'DELETE', path: '/items/archive/4?force=true' }, 'Purge P-1');

  const withoutQuery = await callPdp(server, EVALUATION, evaluationOf(world, token, 'purge', { method: 'DELETE', path: '/items/archive/4' }), { token: pep });
  assert.equal(withoutQuery.json.decision, false);
  const context = withoutQuery.json.context as Record<string, unknown>;
  assert.equal(context.denied_by, 'authorization_details');
  assert.match(String(context.reason), /call exactly DELETE \/items\/archive\/4\?force=true/);

  const withoutPath = await callPdp(server, EVALUATION, evaluationOf(world, token, 'purge', { method: 'DELETE' }), { token: pep });
  assert.equal(withoutPath.json.decision, false, 'a detail that binds a path needs the path in the context');

  const exact = await callPdp(server, EVALUATION, evaluationOf(world, token, 'purge', { method: 'DELETE', path: '/items/archive/4?force=true' }), { token: pep });
  assert.equal(exact.json.decision, true, JSON.stringify(exact.json));
  assert.equal(await approvalUsedAt(world), null, 'the evaluation of a gateway resource leaves the approval unused');

  const call = await callGateway(server, world, '/items/archive/4?force=true', { method: 'DELETE', token });
  assert.equal(call.status, 200, await call.clone().text());
});
