import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { createUser, disableUser } from '../../src/identity/users.ts';
import { revokeDelegation } from '../../src/revocation/revoke.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { PASSWORD, seedWorld } from '../fixtures.ts';
import { launchBrowser, startCallbackServer, type CallbackServer } from '../browser.ts';
import { authorizationCodeTokens, postForm, type CodeFlow } from './code-flow.ts';

describe('userinfo (OIDC Core §5.3) with the code grant access token', () => {
  let server: TestServer;
  let browser: Browser;
  let callback: CallbackServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  /** The person's own application, an OpenID Connect relying party. */
  let portal: CodeFlow;
  let agent: CodeFlow;

  before(async () => {
    server = await startTestServer();
    callback = await startCallbackServer();
    world = await seedWorld(server.ctx, { redirectUri: callback.url });
    browser = await launchBrowser();
    const options = { execute: [client.allowInsecureRequests] };
    const portalConfig = await client.discovery(new URL(server.issuer), world.app.client.client_id, {}, client.ClientSecretBasic(world.app.clientSecret ?? ''), options);
    const agentConfig = await client.discovery(new URL(server.issuer), world.agent.client.client_id, {}, client.ClientSecretBasic(world.agent.clientSecret ?? ''), options);
    portal = { browser, callback, config: portalConfig, resource: world.resource.identifier };
    agent = { browser, callback, config: agentConfig, resource: world.resource.identifier };
  });
  after(async () => {
    await browser.close();
    await callback.close();
    await server.stop();
  });

  async function userinfo(token: string, method = 'GET') {
    const response = await fetch(`${server.issuer}/userinfo`, { method, headers: { authorization: `Bearer ${token}` } });
    return { status: response.status, challenge: response.headers.get('www-authenticate'), body: (await response.json()) as Record<string, unknown> };
  }

  test('openid token of the relying party reads the claims', async () => {
    const tokens = await authorizationCodeTokens(portal, 'alice', 'openid mail.read');
    assert.equal(tokens.scope, 'openid mail.read');
    assert.equal(decodeJwt(tokens.access_token).scope, 'openid mail.read');

    const claims = await client.fetchUserInfo(portal.config, tokens.access_token, tokens.claims()?.sub ?? '');
    assert.deepEqual({ ...claims }, { sub: world.alice.id, name: 'Alice Example', preferred_username: 'alice' });

    // OIDC Core §5.3.1: POST works as well as GET.
    const posted = await userinfo(tokens.access_token, 'POST');
    assert.equal(posted.status, 200);
    assert.equal(posted.body.sub, world.alice.id);
  });

  test('agent openid token reads the claims', async () => {
    const tokens = await authorizationCodeTokens(agent, 'bob', 'openid mail.read');
    const claims = await client.fetchUserInfo(agent.config, tokens.access_token, world.bob.id);
    assert.equal(claims.preferred_username, 'bob');
  });

  test('refresh keeps openid unless narrowed', async () => {
    const tokens = await authorizationCodeTokens(agent, 'alice', 'openid mail.read');
    const refreshed = await client.refreshTokenGrant(agent.config, tokens.refresh_token ?? '');
    assert.equal(refreshed.scope, 'openid mail.read');
    assert.equal((await client.fetchUserInfo(agent.config, refreshed.access_token, world.alice.id)).sub, world.alice.id);

    // RFC 6749 §6: a refresh that names a narrower scope gets only that scope.
    const narrowed = await client.refreshTokenGrant(agent.config, refreshed.refresh_token ?? '', { scope: 'mail.read' });
    assert.equal(narrowed.scope, 'mail.read');
    assert.equal((await userinfo(narrowed.access_token)).status, 403);
  });

  test('token without openid is insufficient_scope', async () => {
    const tokens = await authorizationCodeTokens(agent, 'alice', 'mail.read');
    const response = await userinfo(tokens.access_token);
    assert.equal(response.status, 403);
    assert.deepEqual(response.body, { error: 'insufficient_scope', error_description: 'The access token was not issued for an OpenID Connect request (scope openid).' });
    assert.match(response.challenge ?? '', /error="insufficient_scope"/);
    assert.match(response.challenge ?? '', /scope="openid"/);
    await assert.rejects(client.fetchUserInfo(agent.config, tokens.access_token, world.alice.id), (error: client.WWWAuthenticateChallengeError) => error.code === 'OAUTH_WWW_AUTHENTICATE_CHALLENGE');
  });

  test('agent own token is insufficient_scope', async () => {
    const response = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: world.resource.identifier, scope: 'openid mail.read' }, { clientId: world.agent.client.client_id, secret: world.agent.clientSecret ?? '' });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json?.scope, 'mail.read');
    assert.equal((await userinfo(String(response.json?.access_token))).status, 403);
  });

  test('revoked delegation or disabled person is invalid_token', async () => {
    const revoked = await authorizationCodeTokens(agent, 'alice', 'openid mail.read');
    await revokeDelegation(server.ctx, String(decodeJwt(revoked.access_token).delegation_id), { by: `user:${world.alice.id}` });
    const afterRevocation = await userinfo(revoked.access_token);
    assert.equal(afterRevocation.status, 401);
    assert.deepEqual(afterRevocation.body, { error: 'invalid_token', error_description: 'The access token was revoked.' });

    const dave = await createUser(server.ctx, { username: 'dave', password: PASSWORD, displayName: 'Dave Example' });
    await server.ctx.db.insertInto('user_roles').values({ user_id: dave.id, role_id: world.roles.reader }).execute();
    const tokens = await authorizationCodeTokens(agent, 'dave', 'openid mail.read');
    assert.equal((await userinfo(tokens.access_token)).status, 200);
    await disableUser(server.ctx, dave.id);
    assert.equal((await userinfo(tokens.access_token)).status, 401);
  });

  test('ID token and missing token are rejected', async () => {
    const tokens = await authorizationCodeTokens(portal, 'alice', 'openid mail.read');
    const withIdToken = await userinfo(tokens.id_token ?? '');
    assert.equal(withIdToken.status, 401);
    assert.deepEqual(withIdToken.body, { error: 'invalid_token', error_description: 'The access token is invalid.' });

    const missing = await fetch(`${server.issuer}/userinfo`);
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="mandate"');
  });
});
