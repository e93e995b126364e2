import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair } from 'jose';
import type { Browser } from 'playwright-core';
import { createClient, disableClient } from '../../src/agents/clients.ts';
import { createUser, disableUser } from '../../src/identity/users.ts';
import { issueAccessToken } from '../../src/oauth/access-token.ts';
import { createDelegation } from '../../src/oauth/delegation.ts';
import { revokeDelegation } from '../../src/revocation/revoke.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { PASSWORD, seedWorld } from '../fixtures.ts';
import { launchBrowser, startCallbackServer, type CallbackServer } from '../browser.ts';
import { authorizationCodeTokens, postForm, type CodeFlow } from './code-flow.ts';

describe('token introspection (RFC 7662) at /introspect', () => {
  let server: TestServer;
  let browser: Browser;
  let callback: CallbackServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let flow: CodeFlow;
  /**
   * A resource server that introspects the tokens it receives. It is an admin client, because
   * agents and applications may introspect only their own tokens.
   */
  let resourceServer: client.Configuration;
  let resourceServerCredentials: { clientId: string; secret: string };
  let agent: { clientId: string; secret: string };

  before(async () => {
    server = await startTestServer();
    callback = await startCallbackServer();
    world = await seedWorld(server.ctx, { redirectUri: callback.url });
    browser = await launchBrowser();
    agent = { clientId: world.agent.client.client_id, secret: world.agent.clientSecret ?? '' };
    const options = { execute: [client.allowInsecureRequests] };
    const config = await client.discovery(new URL(server.issuer), agent.clientId, {}, client.ClientSecretBasic(agent.secret), options);
    flow = { browser, callback, config, resource: world.resource.identifier };

    const registered = await createClient(server.ctx, { kind: 'admin', name: 'Mail API' });
    resourceServerCredentials = { clientId: registered.client.client_id, secret: registered.clientSecret ?? '' };
    resourceServer = await client.discovery(new URL(server.issuer), registered.client.client_id, {}, client.ClientSecretBasic(registered.clientSecret ?? ''), options);
  });
  after(async () => {
    await browser.close();
    await callback.close();
    await server.stop();
  });

  /** Posts to /introspect as the resource server and returns the raw body, to check the exact inactive response. */
  async function rawIntrospection(token: string, credentials = resourceServerCredentials) {
    return postForm(`${server.issuer}/introspect`, { token }, credentials);
  }

  async function assertInactive(token: string, credentials = resourceServerCredentials) {
    const response = await rawIntrospection(token, credentials);
    assert.equal(response.status, 200);
    assert.equal(response.text, '{"active":false}');
  }

  async function clientCredentialsToken(credentials: { clientId: string; secret: string }): Promise<string> {
    const response = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: world.resource.identifier, scope: 'mail.read' }, credentials);
    assert.equal(response.status, 200, response.text);
    return String(response.json?.access_token);
  }

  test('metadata names the endpoint and its auth methods', () => {
    const metadata = flow.config.serverMetadata();
    assert.equal(metadata.introspection_endpoint, `${server.issuer}/introspect`);
    assert.deepEqual(metadata.introspection_endpoint_auth_methods_supported, ['client_secret_basic', 'private_key_jwt']);
  });

  test('delegated access token shows its claims', async () => {
    const tokens = await authorizationCodeTokens(flow, 'alice', 'mail.read mail.send');
    const claims = decodeJwt(tokens.access_token);

    const response = await client.tokenIntrospection(resourceServer, tokens.access_token);
    assert.deepEqual({ ...response }, {
      active: true,
      scope: 'mail.read mail.send',
      client_id: agent.clientId,
      sub: world.alice.id,
      aud: world.resource.identifier,
      iss: server.issuer,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      token_type: 'Bearer',
      act: { sub: agent.clientId },
      delegation_id: claims.delegation_id,
    });
    const raw = await rawIntrospection(tokens.access_token);
    assert.equal(raw.headers.get('cache-control'), 'no-store');
    assert.match(raw.headers.get('content-type') ?? '', /^application\/json/);
  });

  test('agent own token has no act', async () => {
    const token = await clientCredentialsToken(agent);
    const response = await client.tokenIntrospection(resourceServer, token);
    assert.equal(response.active, true);
    assert.equal(response.sub, agent.clientId);
    assert.equal(response.client_id, agent.clientId);
    assert.equal(response.act, undefined);
    assert.equal(response.delegation_id, undefined);
  });

  test('refresh token is active for its own client only', async () => {
    const tokens = await authorizationCodeTokens(flow, 'alice', 'mail.read');
    const refreshToken = tokens.refresh_token ?? '';

    const own = await client.tokenIntrospection(flow.config, refreshToken, { token_type_hint: 'refresh_token' });
    assert.equal(own.active, true);
    assert.equal(own.client_id, agent.clientId);
    assert.equal(own.sub, world.alice.id);
    assert.equal(own.scope, 'mail.read');
    assert.equal(own.aud, world.resource.identifier);
    assert.equal(own.delegation_id, decodeJwt(tokens.access_token).delegation_id);
    assert.equal(typeof own.exp, 'number');
    assert.equal(own.token_type, undefined);

    await assertInactive(refreshToken);

    // Rotation spends the token, so it is no longer active even for its client.
    await client.refreshTokenGrant(flow.config, refreshToken);
    await assertInactive(refreshToken, agent);
  });

  test('revoked delegation makes its tokens inactive', async () => {
    const tokens = await authorizationCodeTokens(flow, 'alice', 'mail.read');
    await revokeDelegation(server.ctx, String(decodeJwt(tokens.access_token).delegation_id), { by: `user:${world.alice.id}` });

    await assertInactive(tokens.access_token);
    await assertInactive(tokens.refresh_token ?? '', agent);
  });

  test('disabled person or agent makes tokens inactive', async () => {
    const carol = await createUser(server.ctx, { username: 'carol', password: PASSWORD, displayName: 'Carol Example' });
    await server.ctx.db.insertInto('user_roles').values({ user_id: carol.id, role_id: world.roles.reader }).execute();
    const tokens = await authorizationCodeTokens(flow, 'carol', 'mail.read');
    assert.equal((await client.tokenIntrospection(resourceServer, tokens.access_token)).active, true);
    await disableUser(server.ctx, carol.id);
    await assertInactive(tokens.access_token);
    await assertInactive(tokens.refresh_token ?? '', agent);

    const otherAgent = await createClient(server.ctx, { kind: 'agent', name: 'Short-lived agent' });
    await server.ctx.db.insertInto('client_roles').values({ client_id: otherAgent.client.client_id, role_id: world.roles.reader }).execute();
    const token = await clientCredentialsToken({ clientId: otherAgent.client.client_id, secret: otherAgent.clientSecret ?? '' });
    assert.equal((await client.tokenIntrospection(resourceServer, token)).active, true);
    await disableClient(server.ctx, otherAgent.client.client_id);
    await assertInactive(token);
  });

  test('expired, unknown and foreign tokens are inactive', async () => {
    const expired = await issueAccessToken(server.ctx, { subject: agent.clientId, clientId: agent.clientId, audience: world.resource.identifier, scope: ['mail.read'], lifetimeSeconds: -60 });
    const { privateKey } = await generateKeyPair('EdDSA');
    const foreignKey = await new SignJWT({ ...decodeJwt(await clientCredentialsToken(agent)) }).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: server.ctx.keys.accessToken.kid }).sign(privateKey);
    const tokens = await authorizationCodeTokens(flow, 'alice', 'openid mail.read');
    const idToken = tokens.id_token ?? '';
    const otherTenant = await issueAccessToken({ ...server.ctx, tenantId: 'other' }, { subject: agent.clientId, clientId: agent.clientId, audience: world.resource.identifier, scope: ['mail.read'], lifetimeSeconds: 60 });

    for (const token of [expired.token, foreignKey, idToken, otherTenant.token, 'garbage', `rt_${'B'.repeat(43)}`]) await assertInactive(token);
    assert.deepEqual({ ...(await client.tokenIntrospection(resourceServer, 'garbage')) }, { active: false });
  });

  test('private_key_jwt client can introspect', async () => {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'rs-key-1', alg: 'EdDSA', use: 'sig' };
    const registered = await createClient(server.ctx, { kind: 'admin', name: 'Calendar API', jwks: { keys: [jwk] } });
    const config = await client.discovery(new URL(server.issuer), registered.client.client_id, {}, client.PrivateKeyJwt({ key: privateKey, kid: 'rs-key-1' }), { execute: [client.allowInsecureRequests] });

    const token = await clientCredentialsToken(agent);
    assert.equal((await client.tokenIntrospection(config, token)).active, true);
  });

  test('agent introspects only its own tokens', async () => {
    const own = await clientCredentialsToken(agent);
    const delegated = (await authorizationCodeTokens(flow, 'alice', 'mail.read')).access_token;
    const otherAgent = await createClient(server.ctx, { kind: 'agent', name: 'Other mail agent' });
    await server.ctx.db.insertInto('client_roles').values({ client_id: otherAgent.client.client_id, role_id: world.roles.reader }).execute();
    const other = { clientId: otherAgent.client.client_id, secret: otherAgent.clientSecret ?? '' };
    const othersToken = await clientCredentialsToken(other);

    // Issued to the caller (client_id): active.
    assert.equal((await rawIntrospection(own, agent)).json?.active, true);
    assert.equal((await rawIntrospection(delegated, agent)).json?.active, true);
    assert.equal((await rawIntrospection(othersToken, other)).json?.active, true);

    // RFC 7662 §2.2, §4: another client's token is inactive for the caller, an application as well.
    await assertInactive(othersToken, agent);
    await assertInactive(own, other);
    await assertInactive(delegated, other);
    await assertInactive(own, { clientId: world.app.client.client_id, secret: world.app.clientSecret ?? '' });
  });

  test('earlier actor may introspect the chain', async () => {
    // A sub-agent's token after the agent handed it on (RFC 8693 §4.1): act {sub: sub-agent, act: {sub: agent}}.
    const subAgent = await createClient(server.ctx, { kind: 'agent', name: 'Mail sub-agent' });
    const sub = { clientId: subAgent.client.client_id, secret: subAgent.clientSecret ?? '' };
    const parent = await createDelegation(server.ctx, { userId: world.alice.id, clientId: agent.clientId, resourceId: world.resource.id, scope: ['mail.read'], source: 'consent' });
    const handed = await createDelegation(server.ctx, { userId: world.alice.id, clientId: sub.clientId, resourceId: world.resource.id, scope: ['mail.read'], source: 'token_exchange', parentDelegationId: parent.id });
    const issued = await issueAccessToken(server.ctx, { subject: world.alice.id, clientId: sub.clientId, actorChain: [sub.clientId, agent.clientId], audience: world.resource.identifier, scope: ['mail.read'], lifetimeSeconds: 300, delegationId: handed.id });

    const bySub = await rawIntrospection(issued.token, sub);
    assert.equal(bySub.json?.active, true);
    const byParent = await rawIntrospection(issued.token, agent);
    assert.equal(byParent.json?.active, true);
    assert.deepEqual(byParent.json?.act, { sub: sub.clientId, act: { sub: agent.clientId } });

    const stranger = await createClient(server.ctx, { kind: 'agent', name: 'Unrelated agent' });
    await assertInactive(issued.token, { clientId: stranger.client.client_id, secret: stranger.clientSecret ?? '' });
  });

  test('self-registered client is invalid_client', async () => {
    const registered = await createClient(server.ctx, { kind: 'registered', name: 'Self-registered API', redirectUris: ['https://registered.example.test/cb'], registration: { origin: 'dynamic' } });
    const credentials = { clientId: registered.client.client_id, secret: registered.clientSecret ?? '' };
    const tokens = await authorizationCodeTokens(flow, 'alice', 'mail.read');

    for (const token of [tokens.access_token, tokens.refresh_token ?? '', 'garbage']) {
      const response = await rawIntrospection(token, credentials);
      assert.equal(response.status, 401);
      assert.deepEqual(response.json, { error: 'invalid_client', error_description: 'This client registered itself and an administrator has not yet made it an agent, so it may not introspect tokens.' });
      assert.match(response.headers.get('www-authenticate') ?? '', /^Basic realm="mandate"/);
    }
  });

  test('bad requests get their error', async () => {
    const token = await clientCredentialsToken(agent);
    const url = `${server.issuer}/introspect`;

    const anonymous = await postForm(url, { token });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json?.error, 'invalid_client');
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic /);

    const wrongSecret = await postForm(url, { token }, { clientId: resourceServerCredentials.clientId, secret: 'wrong' });
    assert.deepEqual(wrongSecret.json, { error: 'invalid_client', error_description: 'Client authentication failed.' });

    const missing = await postForm(url, { token_type_hint: 'access_token' }, resourceServerCredentials);
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.json, { error: 'invalid_request', error_description: 'The token parameter is missing.' });

    const repeatedHint = await postForm(url, `token=${token}&token_type_hint=a&token_type_hint=b`, resourceServerCredentials);
    assert.equal(repeatedHint.status, 400);
    assert.deepEqual(repeatedHint.json, { error: 'invalid_request', error_description: 'The token_type_hint parameter must appear only once.' });

    const byGet = await fetch(`${url}?token=${token}`);
    assert.equal(byGet.status, 404);
  });
});
