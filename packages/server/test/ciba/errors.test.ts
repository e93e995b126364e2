import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { createWorld, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { createClient } from '../../src/agents/clients.ts';
import { createUser } from '../../src/identity/users.ts';
import { issueIdToken } from '../../src/oauth/id-token.ts';
import { updatePolicy } from '../../src/admin/policy.ts';
import { PASSWORD } from '../fixtures.ts';
import { actionDetail, assertOAuthError, backchannelRequest, basic, cibaRequestId, cibaTokenRequest, decideOnPage, personDecides, requestSend, signInWithFetch, sleep, type JsonResponse } from './ciba-world.ts';

let server: TestServer;
let upstream: Upstream;

before(async () => {
  server = await startTestServer({ cibaPollIntervalSeconds: 1, cibaMaxExpirySeconds: 900 });
  upstream = await startUpstream();
});

after(async () => {
  await upstream.close();
  await server.stop();
});

async function statusOf(world: World, bindingMessage: string): Promise<string> {
  const row = await server.ctx.db.selectFrom('ciba_requests').select('status').where('client_id', '=', world.agentId).where('binding_message', '=', bindingMessage).executeTakeFirstOrThrow();
  return row.status;
}

describe('backchannel request errors (CIBA Core 1.0 §13)', () => {
  let world: World;
  const request = (params: Record<string, string>) => backchannelRequest(server, world, params);
  const valid = () => ({ scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send', { to: 'bob@example.test' }) });

  before(async () => {
    world = await createWorld(server, upstream.url);
  });

  test('unknown or disabled person', async () => {
    assertOAuthError(await request({ ...valid(), login_hint: 'nobody-here' }), 400, 'unknown_user_id');
    const disabled = await createUser(server.ctx, { username: `disabled-${world.resourceName}`, displayName: 'Disabled', password: PASSWORD });
    await server.ctx.db.updateTable('users').set({ status: 'disabled' }).where('id', '=', disabled.id).execute();
    assertOAuthError(await request({ ...valid(), login_hint: disabled.username }), 400, 'unknown_user_id', 'a disabled person is unknown');
  });

  test('hints: exactly one, of a known kind', async () => {
    const { login_hint: _hint, ...withoutHint } = valid();
    assertOAuthError(await request(withoutHint), 400, 'invalid_request', 'no hint');
    assertOAuthError(await request({ ...valid(), login_hint_token: 'eyJ.hint.token' }), 400, 'invalid_request', 'two hints');
    assertOAuthError(await request({ ...withoutHint, login_hint_token: 'eyJ.hint.token' }), 400, 'invalid_request', 'login_hint_token is not supported');

    const foreign = await issueIdToken(server.ctx, { user: world.user, clientId: world.applicationId, nonce: null, authTime: 1 });
    assertOAuthError(await request({ ...withoutHint, id_token_hint: foreign }), 400, 'invalid_request', 'an ID token of another client');
    const own = await issueIdToken(server.ctx, { user: world.user, clientId: world.agentId, nonce: null, authTime: 1 });
    const accepted = await request({ ...withoutHint, id_token_hint: own });
    assert.equal(accepted.status, 200, `an ID token issued to the agent names the person: ${JSON.stringify(accepted.body)}`);
  });

  test('person roles must grant the action', async () => {
    const stranger = await createUser(server.ctx, { username: `stranger-${world.resourceName}`, displayName: 'Stranger', password: PASSWORD });
    const response = await request({ ...valid(), login_hint: stranger.username });
    assertOAuthError(response, 403, 'access_denied');
    assert.match(String(response.body.error_description), /person's roles do not grant send/);
  });

  test('agent roles must grant the action', async () => {
    const bare = await createClient(server.ctx, { kind: 'agent', name: `Bare agent ${world.resourceName}` });
    const response = await backchannelRequest(server, { agentId: bare.client.client_id, agentSecret: bare.clientSecret ?? '' }, valid());
    assertOAuthError(response, 403, 'access_denied');
    assert.match(String(response.body.error_description), /agent's roles do not grant send/);
  });

  test('malformed authorization_details', async () => {
    const cases: [string, string][] = [
      ['not JSON', '[{"type":'],
      ['not an array', JSON.stringify({ type: 'mandate_action', resource: world.identifier, action: 'send' })],
      ['empty', '[]'],
      ['two details', JSON.stringify([{ type: 'mandate_action', resource: world.identifier, action: 'send' }, { type: 'mandate_action', resource: world.identifier, action: 'write' }])],
      ['unknown type', JSON.stringify([{ type: 'payment_initiation', resource: world.identifier, action: 'send' }])],
      ['no type', JSON.stringify([{ resource: world.identifier, action: 'send' }])],
      ['undefined member', JSON.stringify([{ type: 'mandate_action', resource: world.identifier, action: 'send', locations: ['https://elsewhere.test'] }])],
      ['relative resource', JSON.stringify([{ type: 'mandate_action', resource: '/gateway/files', action: 'send' }])],
      ['no action', JSON.stringify([{ type: 'mandate_action', resource: world.identifier }])],
      ['arguments not an object', JSON.stringify([{ type: 'mandate_action', resource: world.identifier, action: 'send', arguments: ['bob'] }])],
      ['repeated member', `[{"type":"mandate_action","resource":${JSON.stringify(world.identifier)},"action":"send","arguments":{"to":"bob","to":"eve"}}]`],
      ['inexact number', `[{"type":"mandate_action","resource":${JSON.stringify(world.identifier)},"action":"send","arguments":{"amount":9007199254740993}}]`],
      ['unknown resource', JSON.stringify([{ type: 'mandate_action', resource: 'https://unknown.example.test/api', action: 'send' }])],
      ['unknown action', JSON.stringify([{ type: 'mandate_action', resource: world.identifier, action: 'launch' }])],
      ['too long', JSON.stringify([{ type: 'mandate_action', resource: world.identifier, action: 'send', arguments: { text: 'x'.repeat(9000) } }])],
    ];
    for (const [name, details] of cases) {
      // RFC 9396 §5: invalid_authorization_details.
      assertOAuthError(await request({ ...valid(), authorization_details: details }), 400, 'invalid_authorization_details', name);
    }
  });

  test('scope needs openid and an action', async () => {
    const { scope: _scope, ...withoutScope } = valid();
    assertOAuthError(await request(withoutScope), 400, 'invalid_request', 'scope is required');
    assertOAuthError(await request({ ...valid(), scope: 'send' }), 400, 'invalid_scope', 'scope without openid');
    const { authorization_details: _details, ...withoutDetails } = valid();
    assertOAuthError(await request(withoutDetails), 400, 'invalid_scope', 'neither an action in scope nor a detail');
    assertOAuthError(await request({ ...withoutDetails, scope: 'openid read' }), 400, 'invalid_target', 'an action in scope needs the resource parameter');
    assertOAuthError(await request({ ...withoutDetails, scope: 'openid launch', resource: world.identifier }), 400, 'invalid_scope', 'an unknown action');
    assertOAuthError(await request({ ...valid(), resource: 'https://other.example.test/api' }), 400, 'invalid_target', 'a resource other than the detail\'s');
  });

  test('binding_message must be short plain text', async () => {
    assertOAuthError(await request({ ...valid(), binding_message: 'x'.repeat(101) }), 400, 'invalid_binding_message', 'too long');
    assertOAuthError(await request({ ...valid(), binding_message: 'Code\nA1' }), 400, 'invalid_binding_message', 'a line break');
    assertOAuthError(await request({ ...valid(), binding_message: 'Code \u202e1A' }), 400, 'invalid_binding_message', 'a right-to-left override');
    const accepted = await request({ ...valid(), binding_message: 'Überweisung Nr. 7 — prüfen' });
    assert.equal(accepted.status, 200, 'letters of any language are plain text');
  });

  test('requested_expiry is bounded', async () => {
    for (const value of ['0', '-5', '1.5', 'soon']) assertOAuthError(await request({ ...valid(), requested_expiry: value }), 400, 'invalid_request', `requested_expiry=${value}`);
    const long = await request({ ...valid(), requested_expiry: '86400' });
    assert.equal(long.status, 200);
    assert.equal(long.body.expires_in, 900, 'shortened to cibaMaxExpirySeconds');
    const short = await request({ ...valid(), requested_expiry: '45' });
    assert.equal(short.body.expires_in, 45);
  });

  test('unsupported and repeated parameters', async () => {
    assertOAuthError(await request({ ...valid(), request: 'eyJhbGciOiJub25lIn0.e30.' }), 400, 'invalid_request', 'signed requests');
    assertOAuthError(await request({ ...valid(), user_code: '1234' }), 400, 'invalid_request', 'user codes');

    const body = new URLSearchParams(valid());
    body.append('scope', 'openid');
    const response = await fetch(`${server.issuer}/bc-authorize`, { method: 'POST', headers: { authorization: basic(world.agentId, world.agentSecret), 'content-type': 'application/x-www-form-urlencoded' }, body });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as Record<string, unknown>).error, 'invalid_request', 'a repeated parameter');
  });

  test('clients that may not ask', async () => {
    const noAuth = await fetch(`${server.issuer}/bc-authorize`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...valid(), client_id: world.agentId }) });
    assert.equal(noAuth.status, 401);
    assert.equal(((await noAuth.json()) as Record<string, unknown>).error, 'invalid_client');

    const wrongSecret = await backchannelRequest(server, { agentId: world.agentId, agentSecret: 'wrong' }, valid());
    assertOAuthError(wrongSecret, 401, 'invalid_client');

    // A public client proves nothing, so it may not ask for a person's approval.
    const publicAgent = await createClient(server.ctx, { kind: 'agent', name: `Public agent ${world.resourceName}`, publicClient: true });
    const publicResponse = await fetch(`${server.issuer}/bc-authorize`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...valid(), client_id: publicAgent.client.client_id }) });
    assert.equal(publicResponse.status, 401);
    assert.equal(((await publicResponse.json()) as Record<string, unknown>).error, 'invalid_client');

    const selfRegistered = await createClient(server.ctx, { kind: 'agent', name: `Self-registered ${world.resourceName}`, registration: { origin: 'dynamic' }, grantTypes: ['authorization_code'] });
    assertOAuthError(await backchannelRequest(server, { agentId: selfRegistered.client.client_id, agentSecret: selfRegistered.clientSecret ?? '' }, valid()), 400, 'unauthorized_client', 'a self-registered client');

    const application = await createClient(server.ctx, { kind: 'application', name: `Portal ${world.resourceName}`, redirectUris: ['https://portal.example.test/cb'] });
    assertOAuthError(await backchannelRequest(server, { agentId: application.client.client_id, agentSecret: application.clientSecret ?? '' }, valid()), 400, 'unauthorized_client', 'an application');
  });
});

describe('backchannel requests and the policy', () => {
  let world: World;

  before(async () => {
    world = await createWorld(server, upstream.url);
    await server.ctx.db.updateTable('resource_actions').set({ arguments: JSON.stringify({ amount: 'Long', to: 'String' }) }).where('resource_id', '=', world.resourceId).where('name', '=', 'send').execute();
    const source = `@id("large-payments") forbid(principal, action == Action::"${world.resourceName}/send", resource) when { context.arguments has amount && context.arguments.amount > 1000 };`;
    await updatePolicy(server.ctx, { source }, 'test');
  });

  test('policy forbid is access_denied', async () => {
    const response = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send', { to: 'bob', amount: 5000 }) });
    assertOAuthError(response, 403, 'access_denied');
    assert.match(String(response.body.error_description), /policy forbids send/);
    const allowed = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send', { to: 'bob', amount: 500 }) });
    assert.equal(allowed.status, 200);
  });

  test('declared argument of wrong type', async () => {
    const response = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send', { to: 'bob', amount: '5000' }) });
    assertOAuthError(response, 400, 'invalid_authorization_details');
    assert.match(String(response.body.error_description), /amount/);
  });
});

describe('token request errors (CIBA Core 1.0 §11)', () => {
  let world: World;

  before(async () => {
    world = await createWorld(server, upstream.url);
  });

  test('unknown, missing or foreign auth_req_id', async () => {
    assertOAuthError(await cibaTokenRequest(server, world, 'not-an-issued-id'), 400, 'invalid_grant');
    const missing = await fetch(`${server.issuer}/token`, { method: 'POST', headers: { authorization: basic(world.agentId, world.agentSecret), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'urn:openid:params:grant-type:ciba' }) });
    assert.equal(((await missing.json()) as Record<string, unknown>).error, 'invalid_request');

    const { auth_req_id: authReqId } = await requestSend(server, world, undefined, { binding_message: 'Foreign 1' });
    const other = await createWorld(server, upstream.url);
    // CIBA Core 1.0 §11: an auth_req_id issued to another client is invalid_grant.
    assertOAuthError(await cibaTokenRequest(server, other, authReqId), 400, 'invalid_grant');
    assertOAuthError(await cibaTokenRequest(server, world, authReqId), 400, 'authorization_pending', 'the foreign request did not count as a poll');
  });

  test('denial is access_denied', async () => {
    const { auth_req_id: authReqId } = await requestSend(server, world, undefined, { binding_message: 'Deny 1' });
    await personDecides(server, world, 'Deny 1', 'deny');
    assert.equal(await statusOf(world, 'Deny 1'), 'denied');
    assertOAuthError(await cibaTokenRequest(server, world, authReqId), 400, 'access_denied');
    assertOAuthError(await cibaTokenRequest(server, world, authReqId), 400, 'access_denied', 'the denial stays');
  });

  test('expiry while pending is expired_token', async () => {
    const { auth_req_id: authReqId, expires_in: expiresIn } = await requestSend(server, world, undefined, { binding_message: 'Expire 1', requested_expiry: '2' });
    assert.equal(expiresIn, 2);
    await sleep(2100);
    assertOAuthError(await cibaTokenRequest(server, world, authReqId), 400, 'expired_token');

    const session = await signInWithFetch(server, world.user.username);
    const requestId = (await server.ctx.db.selectFrom('ciba_requests').select('id').where('binding_message', '=', 'Expire 1').executeTakeFirstOrThrow()).id;
    const page = await (await fetch(`${server.issuer}/approvals/ciba/${requestId}`, { headers: { cookie: session.cookie } })).text();
    assert.match(page, /This request has expired; the agent must ask again\./);
    assert.doesNotMatch(page, /id="approve"/, 'an expired request has no decision buttons');
    const inbox = await (await fetch(`${server.issuer}/approvals`, { headers: { cookie: session.cookie } })).text();
    assert.doesNotMatch(inbox, /Expire 1/, 'the inbox leaves expired requests out');
  });

  test('approval after expiry is refused', async () => {
    await requestSend(server, world, undefined, { binding_message: 'Expire 2', requested_expiry: '2' });
    const session = await signInWithFetch(server, world.user.username);
    const requestId = await cibaRequestId(server, session, 'Expire 2');
    // The form is loaded while the request is pending and sent after it expired.
    const page = await (await fetch(`${server.issuer}/approvals/ciba/${requestId}`, { headers: { cookie: session.cookie } })).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
    await sleep(2100);
    const decided = await fetch(`${server.issuer}/approvals/ciba/${requestId}/approve`, { method: 'POST', redirect: 'manual', headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrf }) });
    assert.equal(decided.status, 409);
    assert.match(await decided.text(), /This request expired before your decision/);
    assert.equal(await statusOf(world, 'Expire 2'), 'pending');
  });

  test('approved then expired is expired_token', async () => {
    const { auth_req_id: authReqId } = await requestSend(server, world, undefined, { binding_message: 'Expire 3', requested_expiry: '3' });
    await personDecides(server, world, 'Expire 3', 'approve');
    await sleep(3100);
    assertOAuthError(await cibaTokenRequest(server, world, authReqId), 400, 'expired_token', 'an approval not redeemed in time expires');
  });

  test('revoked approval is invalid_grant', async () => {
    const { auth_req_id: authReqId } = await requestSend(server, world, undefined, { binding_message: 'Revoke 1' });
    const requestId = await personDecides(server, world, 'Revoke 1', 'approve');
    const row = await server.ctx.db.selectFrom('ciba_requests').select('delegation_id').where('id', '=', requestId).executeTakeFirstOrThrow();
    await server.ctx.db.updateTable('delegations').set({ revoked_at: Math.floor(Date.now() / 1000), revoked_reason: 'test' }).where('id', '=', String(row.delegation_id)).execute();
    assertOAuthError(await cibaTokenRequest(server, world, authReqId), 400, 'invalid_grant');
  });

  test('lost role is invalid_grant', async () => {
    const lossWorld = await createWorld(server, upstream.url);
    const { auth_req_id: authReqId } = await requestSend(server, lossWorld, undefined, { binding_message: 'Role 1' });
    await personDecides(server, lossWorld, 'Role 1', 'approve');
    await server.ctx.db.deleteFrom('user_roles').where('user_id', '=', lossWorld.user.id).execute();
    const response: JsonResponse = await cibaTokenRequest(server, lossWorld, authReqId);
    assertOAuthError(response, 400, 'invalid_grant', 'roles are read again at the token endpoint');
  });
});

describe('CIBA approval page', () => {
  let world: World;

  before(async () => {
    world = await createWorld(server, upstream.url);
  });

  test('decisions need the CSRF token', async () => {
    await requestSend(server, world, undefined, { binding_message: 'Csrf 1' });
    const session = await signInWithFetch(server, world.user.username);
    const requestId = await cibaRequestId(server, session, 'Csrf 1');
    for (const decision of ['approve', 'deny']) {
      const response = await fetch(`${server.issuer}/approvals/ciba/${requestId}/${decision}`, { method: 'POST', redirect: 'manual', headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
      assert.equal(response.status, 403, `${decision} without a token`);
    }
    assert.equal(await statusOf(world, 'Csrf 1'), 'pending');
  });

  test('page shows the request in full', async () => {
    await requestSend(server, world, { to: 'carol@example.test', amount: 12 }, { binding_message: 'Show 1' });
    const session = await signInWithFetch(server, world.user.username);
    const requestId = await cibaRequestId(server, session, 'Show 1');
    const page = await (await fetch(`${server.issuer}/approvals/ciba/${requestId}`, { headers: { cookie: session.cookie } })).text();
    assert.match(page, /<strong class="binding-message-text">Show 1<\/strong>/);
    assert.match(page, /<code class="action">send<\/code> Send a message/);
    assert.match(page, /&quot;amount&quot;: 12/);
    assert.match(page, /valid for 10 minutes/);
    assert.match(page, new RegExp(`<td id="person">${world.user.display_name}</td>`));

    await requestSend(server, world, undefined, { binding_message: 'Show 2' });
    const anyArguments = await (await fetch(`${server.issuer}/approvals/ciba/${await cibaRequestId(server, session, 'Show 2')}`, { headers: { cookie: session.cookie } })).text();
    assert.match(anyArguments, /Any arguments: the agent chooses them at each call\./);
  });

  test('another person sees nothing', async () => {
    await requestSend(server, world, undefined, { binding_message: 'Private 1' });
    const owner = await signInWithFetch(server, world.user.username);
    const requestId = await cibaRequestId(server, owner, 'Private 1');

    const other = await createWorld(server, upstream.url);
    const stranger = await signInWithFetch(server, other.user.username);
    const page = await fetch(`${server.issuer}/approvals/ciba/${requestId}`, { headers: { cookie: stranger.cookie } });
    assert.equal(page.status, 404);
    const inbox = await (await fetch(`${server.issuer}/approvals`, { headers: { cookie: stranger.cookie } })).text();
    assert.doesNotMatch(inbox, /Private 1/);

    const signedOut = await fetch(`${server.issuer}/approvals/ciba/${requestId}`, { redirect: 'manual' });
    assert.equal(signedOut.status, 303);
    assert.equal(signedOut.headers.get('location'), `/login?return_to=${encodeURIComponent(`/approvals/ciba/${requestId}`)}`);
  });

  test('old sign-in must sign in again', async () => {
    await requestSend(server, world, undefined, { binding_message: 'Fresh 1' });
    const session = await signInWithFetch(server, world.user.username);
    const requestId = await cibaRequestId(server, session, 'Fresh 1');
    await server.ctx.db.updateTable('sessions').set({ auth_time: Math.floor(Date.now() / 1000) - 3600 }).where('user_id', '=', world.user.id).execute();

    const page = await (await fetch(`${server.issuer}/approvals/ciba/${requestId}`, { headers: { cookie: session.cookie } })).text();
    assert.match(page, /id="fresh-sign-in"/);
    const approve = await decideOnPage(server, session, requestId, 'approve');
    assert.equal(approve.status, 303);
    assert.equal(approve.headers.get('location'), `/login?return_to=${encodeURIComponent(`/approvals/ciba/${requestId}`)}`);
    assert.equal(await statusOf(world, 'Fresh 1'), 'pending', 'the old session did not approve');

    const deny = await decideOnPage(server, session, requestId, 'deny');
    assert.equal(deny.status, 303, 'denying needs no fresh sign-in');
    assert.equal(await statusOf(world, 'Fresh 1'), 'denied');
  });

  test('second decision is refused', async () => {
    await requestSend(server, world, undefined, { binding_message: 'Twice 1' });
    const session = await signInWithFetch(server, world.user.username);
    const requestId = await cibaRequestId(server, session, 'Twice 1');
    const page = await (await fetch(`${server.issuer}/approvals/ciba/${requestId}`, { headers: { cookie: session.cookie } })).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
    const post = (decision: string) => fetch(`${server.issuer}/approvals/ciba/${requestId}/${decision}`, { method: 'POST', redirect: 'manual', headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrf }) });
    assert.equal((await post('deny')).status, 303);
    assert.equal((await post('approve')).status, 409, 'a denied request cannot be approved afterwards');
    assert.equal(await statusOf(world, 'Twice 1'), 'denied');
  });
});
