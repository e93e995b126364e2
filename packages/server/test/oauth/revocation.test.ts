import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { readAudit } from '../../src/audit/verify.ts';
import { issueAccessToken } from '../../src/oauth/access-token.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { launchBrowser, startCallbackServer, type CallbackServer } from '../browser.ts';
import { callGateway, createWorld, delegatedToken, startUpstream, type Upstream } from '../gateway/world.ts';
import { authorizationCodeTokens, postForm, type CodeFlow } from './code-flow.ts';

describe('token revocation (RFC 7009) at /revoke', () => {
  let server: TestServer;
  let browser: Browser;
  let callback: CallbackServer;
  let upstream: Upstream;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let flow: CodeFlow;
  let appConfig: client.Configuration;
  let agent: { clientId: string; secret: string };
  let app: { clientId: string; secret: string };

  before(async () => {
    server = await startTestServer();
    callback = await startCallbackServer();
    upstream = await startUpstream();
    world = await seedWorld(server.ctx, { redirectUri: callback.url });
    browser = await launchBrowser();
    agent = { clientId: world.agent.client.client_id, secret: world.agent.clientSecret ?? '' };
    app = { clientId: world.app.client.client_id, secret: world.app.clientSecret ?? '' };
    const options = { execute: [client.allowInsecureRequests] };
    const config = await client.discovery(new URL(server.issuer), agent.clientId, {}, client.ClientSecretBasic(agent.secret), options);
    appConfig = await client.discovery(new URL(server.issuer), app.clientId, {}, client.ClientSecretBasic(app.secret), options);
    flow = { browser, callback, config, resource: world.resource.identifier };
  });
  after(async () => {
    await browser.close();
    await callback.close();
    await upstream.close();
    await server.stop();
  });

  async function introspect(token: string) {
    return client.tokenIntrospection(flow.config, token);
  }

  async function delegationOf(accessToken: string) {
    return server.ctx.db.selectFrom('delegations').selectAll().where('id', '=', String(decodeJwt(accessToken).delegation_id)).executeTakeFirstOrThrow();
  }

  test('metadata names the endpoint and its auth methods', async () => {
    const metadata = flow.config.serverMetadata();
    assert.equal(metadata.revocation_endpoint, `${server.issuer}/revoke`);
    assert.deepEqual(metadata.revocation_endpoint_auth_methods_supported, ['client_secret_basic', 'private_key_jwt']);
  });

  test('refresh token revokes its whole grant', async () => {
    const first = await authorizationCodeTokens(flow, 'alice', 'mail.read');
    const rotated = await client.refreshTokenGrant(flow.config, first.refresh_token ?? '');
    assert.equal((await introspect(rotated.access_token)).active, true);

    await client.tokenRevocation(flow.config, rotated.refresh_token ?? '', { token_type_hint: 'refresh_token' });

    await assert.rejects(client.refreshTokenGrant(flow.config, rotated.refresh_token ?? ''), (error: client.ResponseBodyError) => error.error === 'invalid_grant');
    const delegation = await delegationOf(rotated.access_token);
    assert.equal(delegation.revoked_reason, 'refresh_token_revoked');
    const family = await server.ctx.db.selectFrom('refresh_tokens').select('revoked_at').where('delegation_id', '=', delegation.id).execute();
    assert.equal(family.length, 2);
    assert.ok(family.every((row) => row.revoked_at !== null));
    // Both access tokens of the grant, the first one included, are inactive from now on.
    assert.deepEqual(await introspect(rotated.access_token), { active: false });
    assert.deepEqual(await introspect(first.access_token), { active: false });

    const entries = await readAudit(server.ctx.db, { limit: 1000 });
    const revoked = entries.find((entry) => entry.event.event === 'token.revoked' && entry.event.target?.delegation_id === delegation.id);
    assert.equal(revoked?.event.agent, agent.clientId);
    assert.equal(revoked?.event.user, world.alice.id);
  });

  test('access token is revoked by its jti', async () => {
    const tokens = await authorizationCodeTokens(flow, 'alice', 'openid mail.read');
    const claims = decodeJwt(tokens.access_token);
    assert.equal((await client.fetchUserInfo(flow.config, tokens.access_token, world.alice.id)).sub, world.alice.id);

    await client.tokenRevocation(flow.config, tokens.access_token, { token_type_hint: 'access_token' });

    const row = await server.ctx.db.selectFrom('revoked_access_tokens').selectAll().where('jti', '=', String(claims.jti)).executeTakeFirst();
    assert.equal(row?.expires_at, claims.exp);
    assert.equal(row?.client_id, agent.clientId);
    assert.deepEqual(await introspect(tokens.access_token), { active: false });

    const userinfo = await fetch(`${server.issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(userinfo.status, 401);
    assert.deepEqual(await userinfo.json(), { error: 'invalid_token', error_description: 'The access token has been revoked.' });

    // Revoking an access token leaves the grant standing: the refresh token still works.
    const refreshed = await client.refreshTokenGrant(flow.config, tokens.refresh_token ?? '');
    assert.equal((await introspect(refreshed.access_token)).active, true);
  });

  test('second revocation of a token is 200', async () => {
    const tokens = await authorizationCodeTokens(flow, 'alice', 'mail.read');
    for (const token of [tokens.access_token, tokens.access_token, tokens.refresh_token ?? '', tokens.refresh_token ?? '']) {
      const response = await postForm(`${server.issuer}/revoke`, { token }, agent);
      assert.equal(response.status, 200);
      assert.equal(response.text, '');
    }
  });

  test('unknown, malformed and expired tokens get 200', async () => {
    const expired = await issueAccessToken(server.ctx, { subject: agent.clientId, clientId: agent.clientId, audience: world.resource.identifier, scope: ['mail.read'], lifetimeSeconds: -60 });
    const unknownTokens = ['not-a-token', `rt_${'A'.repeat(43)}`, 'a.b.c', expired.token];
    for (const token of unknownTokens) {
      const response = await postForm(`${server.issuer}/revoke`, { token, token_type_hint: 'access_token' }, agent);
      assert.equal(response.status, 200, token);
      assert.equal(response.headers.get('cache-control'), 'no-store');
    }
    const row = await server.ctx.db.selectFrom('revoked_access_tokens').select('jti').where('jti', '=', expired.claims.jti).executeTakeFirst();
    assert.equal(row, undefined);
  });

  test('token of another client is refused', async () => {
    const tokens = await authorizationCodeTokens(flow, 'alice', 'mail.read');
    const expected = { error: 'invalid_request', error_description: 'The token was not issued to this client; a client can revoke only its own tokens.' };

    for (const token of [tokens.access_token, tokens.refresh_token ?? '']) {
      const response = await postForm(`${server.issuer}/revoke`, { token }, app);
      assert.equal(response.status, 400);
      assert.deepEqual(response.json, expected);
    }
    await assert.rejects(client.tokenRevocation(appConfig, tokens.refresh_token ?? ''), (error: client.ResponseBodyError) => error.error === 'invalid_request');

    // Neither token was touched.
    assert.equal((await introspect(tokens.access_token)).active, true);
    assert.equal((await introspect(tokens.refresh_token ?? '')).active, true);
  });

  test('gateway rejects a revoked access token', async () => {
    const gatewayWorld = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, gatewayWorld, 'read');
    assert.equal((await callGateway(server, gatewayWorld, '/items', { token })).status, 200);

    const revoked = await postForm(`${server.issuer}/revoke`, { token }, { clientId: gatewayWorld.agentId, secret: gatewayWorld.agentSecret });
    assert.equal(revoked.status, 200);

    const calls = upstream.received.length;
    const response = await callGateway(server, gatewayWorld, '/items', { token });
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.equal(upstream.received.length, calls);
  });

  test('bad requests get their error', async () => {
    const tokens = await authorizationCodeTokens(flow, 'alice', 'mail.read');
    const url = `${server.issuer}/revoke`;

    const anonymous = await postForm(url, { token: tokens.access_token });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json?.error, 'invalid_client');
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic /);

    const wrongSecret = await postForm(url, { token: tokens.access_token }, { clientId: agent.clientId, secret: 'wrong' });
    assert.equal(wrongSecret.status, 401);
    assert.deepEqual(wrongSecret.json, { error: 'invalid_client', error_description: 'Client authentication failed.' });

    const missing = await postForm(url, {}, agent);
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.json, { error: 'invalid_request', error_description: 'The token parameter is missing.' });

    const repeated = await postForm(url, `token=${tokens.access_token}&token=${tokens.access_token}`, agent);
    assert.equal(repeated.status, 400);
    assert.deepEqual(repeated.json, { error: 'invalid_request', error_description: 'The token parameter must appear only once.' });

    const json = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${agent.clientId}:${agent.secret}`).toString('base64')}` }, body: JSON.stringify({ token: tokens.access_token }) });
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { error: string }).error, 'invalid_request');

    const byGet = await fetch(url);
    assert.equal(byGet.status, 404);

    // None of these revoked anything.
    assert.equal((await introspect(tokens.access_token)).active, true);
  });
});

describe('revocation lookup failure', () => {
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

  test('denies instead of accepting', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world, 'read');
    const credentials = { clientId: world.agentId, secret: world.agentSecret };
    assert.equal((await callGateway(server, world, '/items', { token })).status, 200);

    // Without its table the revocation lookup fails; every consumer of the token must deny.
    await server.ctx.db.schema.dropTable('revoked_access_tokens').execute();

    const gateway = await callGateway(server, world, '/items', { token });
    assert.equal(gateway.status, 401);
    const introspection = await postForm(`${server.issuer}/introspect`, { token }, credentials);
    assert.equal(introspection.status, 500);
    assert.equal(introspection.json?.error, 'server_error');
    // The client does not get 200 for a revocation that was not recorded.
    const revocation = await postForm(`${server.issuer}/revoke`, { token }, credentials);
    assert.equal(revocation.status, 500);
  });
});
