import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import { startTestServer, type TestServer } from '../harness.ts';
import { callGateway, createWorld, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { actionDetail, personDecides } from './ciba-world.ts';

/**
 * The CIBA flow of openid-client 6 (initiateBackchannelAuthentication, then
 * pollBackchannelAuthenticationGrant, which waits `interval` and handles authorization_pending and
 * slow_down itself) against the real server, while the person decides on the real page.
 */
describe('openid-client CIBA poll mode', () => {
  let server: TestServer;
  let upstream: Upstream;
  let world: World;
  let config: client.Configuration;

  before(async () => {
    server = await startTestServer({ cibaPollIntervalSeconds: 1 });
    upstream = await startUpstream();
    world = await createWorld(server, upstream.url);
    config = await client.discovery(new URL(server.issuer), world.agentId, {}, client.ClientSecretBasic(world.agentSecret), { execute: [client.allowInsecureRequests] });
  });
  after(async () => {
    await upstream.close();
    await server.stop();
  });

  test('discovery finds the backchannel endpoint', () => {
    const metadata = config.serverMetadata();
    assert.equal(metadata.backchannel_authentication_endpoint, `${server.issuer}/bc-authorize`);
    assert.deepEqual(metadata.backchannel_token_delivery_modes_supported, ['poll', 'ping']);
  });

  test('approved request yields the detail token', async () => {
    const args = { to: 'bob@example.test', amount: 42 };
    const started = await client.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: world.user.username, binding_message: 'OIDC 1', authorization_details: actionDetail(world, 'send', args) });
    assert.equal(started.interval, 1);

    const [tokens] = await Promise.all([client.pollBackchannelAuthenticationGrant(config, started), personDecides(server, world, 'OIDC 1', 'approve')]);
    assert.deepEqual(tokens.authorization_details, [{ type: 'mandate_action', resource: world.identifier, action: 'send', arguments: args }]);
    // openid-client validated the ID token: issuer, audience, signature, lifetime.
    assert.equal(tokens.claims()?.sub, world.user.id);
    assert.deepEqual(decodeJwt(tokens.access_token).authorization_details, tokens.authorization_details);

    const call = await callGateway(server, world, '/send/mail', { method: 'POST', token: tokens.access_token, body: JSON.stringify(args), headers: { 'content-type': 'application/json' } });
    assert.equal(call.status, 200);
  });

  test('denied request rejects the poll', async () => {
    const started = await client.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: world.user.username, binding_message: 'OIDC 2', authorization_details: actionDetail(world, 'send') });
    const [outcome] = await Promise.allSettled([client.pollBackchannelAuthenticationGrant(config, started), personDecides(server, world, 'OIDC 2', 'deny')]);
    assert.equal(outcome.status, 'rejected');
    const error = (outcome as PromiseRejectedResult).reason as client.ResponseBodyError;
    assert.ok(error instanceof client.ResponseBodyError, String(error));
    assert.equal(error.error, 'access_denied');
    assert.equal(error.status, 400);
  });
});
