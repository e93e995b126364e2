import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { Browser } from 'playwright-core';
import { startTestServer, type TestServer } from '../harness.ts';
import { PASSWORD, seedWorld } from '../fixtures.ts';
import { launchBrowser, signIn, startCallbackServer, type CallbackServer } from '../browser.ts';
import { postForm } from './code-flow.ts';

describe('authorization code flow with PKCE, driven by openid-client and Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let callback: CallbackServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let config: client.Configuration;

  before(async () => {
    server = await startTestServer();
    callback = await startCallbackServer();
    world = await seedWorld(server.ctx, { redirectUri: callback.url });
    browser = await launchBrowser();
    config = await client.discovery(new URL(server.issuer), world.agent.client.client_id, {}, client.ClientSecretBasic(world.agent.clientSecret ?? ''), { execute: [client.allowInsecureRequests] });
  });
  after(async () => {
    await browser.close();
    await callback.close();
    await server.stop();
  });

  async function authorize(username: string, scope: string, decision: 'allow' | 'deny' = 'allow') {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: callback.url,
      scope,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      resource: world.resource.identifier,
    });

    const page = await browser.newPage();
    await page.goto(url.href);
    await signIn(page, username, PASSWORD);
    const consentText = await page.textContent('main');
    await page.click(decision === 'allow' ? '#allow' : '#deny');
    const returned = await callback.next();
    await page.close();
    return { returned, verifier, state, nonce, consentText: consentText ?? '' };
  }

  test('consent names agent, resource and scopes; tokens are delegated', async () => {
    const { returned, verifier, state, nonce, consentText } = await authorize('alice', 'openid mail.read mail.send');
    assert.match(consentText, /Mail assistant/);
    assert.match(consentText, /mail API/);
    assert.match(consentText, /mail\.read/);
    assert.match(consentText, /mail\.send/);
    assert.equal(returned.searchParams.get('iss'), server.issuer);

    const tokens = await client.authorizationCodeGrant(config, returned, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true }, { resource: world.resource.identifier });
    const claims = decodeJwt(tokens.access_token);
    assert.equal(decodeProtectedHeader(tokens.access_token).typ, 'at+jwt');
    assert.equal(claims.sub, world.alice.id);
    assert.deepEqual(claims.act, { sub: world.agent.client.client_id });
    assert.equal(claims.aud, world.resource.identifier);
    // openid stays on the access token, which is what lets userinfo accept it.
    assert.equal(claims.scope, 'openid mail.read mail.send');
    assert.equal(typeof tokens.refresh_token, 'string');
    assert.equal(tokens.claims()?.sub, world.alice.id);
    assert.equal(decodeJwt(tokens.id_token ?? '').aud, world.agent.client.client_id);

    const rotated = await client.refreshTokenGrant(config, tokens.refresh_token ?? '');
    assert.notEqual(rotated.refresh_token, tokens.refresh_token);
    await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token ?? ''), (error: client.ResponseBodyError) => error.error === 'invalid_grant');
    // The reuse above revoked the whole family, the rotated token included, and the delegation
    // that the access tokens already issued carry.
    await assert.rejects(client.refreshTokenGrant(config, rotated.refresh_token ?? ''), (error: client.ResponseBodyError) => error.error === 'invalid_grant');
    assert.equal(await revokedReason(claims.delegation_id), 'refresh_token_reused');
  });

  async function revokedReason(delegationId: unknown): Promise<string | null | undefined> {
    const row = await server.ctx.db.selectFrom('delegations').select(['revoked_reason']).where('id', '=', String(delegationId)).executeTakeFirst();
    return row?.revoked_reason;
  }

  test('scope beyond the person role is not granted', async () => {
    const { returned, verifier, state } = await authorize('bob', 'mail.read mail.send');
    const tokens = await client.authorizationCodeGrant(config, returned, { pkceCodeVerifier: verifier, expectedState: state });
    assert.equal(tokens.scope, 'mail.read');
  });

  test('code replay is invalid_grant', async () => {
    const { returned, verifier, state } = await authorize('alice', 'mail.read');
    const first = await client.authorizationCodeGrant(config, returned, { pkceCodeVerifier: verifier, expectedState: state });
    assert.equal(await revokedReason(decodeJwt(first.access_token).delegation_id), null);
    await assert.rejects(client.authorizationCodeGrant(config, returned, { pkceCodeVerifier: verifier, expectedState: state }), (error: client.ResponseBodyError) => error.error === 'invalid_grant');
    assert.equal(await revokedReason(decodeJwt(first.access_token).delegation_id), 'authorization_code_replayed');
    await assert.rejects(client.refreshTokenGrant(config, first.refresh_token ?? ''), (error: client.ResponseBodyError) => error.error === 'invalid_grant');
  });

  test('wrong PKCE verifier is invalid_grant', async () => {
    const { returned, state } = await authorize('alice', 'mail.read');
    await assert.rejects(client.authorizationCodeGrant(config, returned, { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: state }), (error: client.ResponseBodyError) => error.error === 'invalid_grant');
  });

  /** Redeems the code of `returned` at the real token endpoint as the agent, with the given verifier and redirect URI. */
  async function redeem(returned: URL, verifier: string, redirectUri = callback.url) {
    const form = { grant_type: 'authorization_code', code: returned.searchParams.get('code') ?? '', code_verifier: verifier, redirect_uri: redirectUri };
    return postForm(`${server.issuer}/token`, form, { clientId: world.agent.client.client_id, secret: world.agent.clientSecret ?? '' });
  }

  test('failed redemption keeps the code', async () => {
    const { returned, verifier } = await authorize('alice', 'mail.read');

    // RFC 7636 §4.6 and RFC 6749 §4.1.3: failed checks are invalid_grant and leave the code unspent.
    const wrongVerifier = await redeem(returned, client.randomPKCECodeVerifier());
    assert.equal(wrongVerifier.status, 400);
    assert.deepEqual(wrongVerifier.json, { error: 'invalid_grant', error_description: 'The code_verifier does not match the code_challenge (PKCE).' });
    const wrongRedirect = await redeem(returned, verifier, `${callback.url}/other`);
    assert.equal(wrongRedirect.status, 400);
    assert.deepEqual(wrongRedirect.json, { error: 'invalid_grant', error_description: 'redirect_uri does not match the authorization request.' });

    const redeemed = await redeem(returned, verifier);
    assert.equal(redeemed.status, 200, redeemed.text);
    assert.equal(await revokedReason(decodeJwt(String(redeemed.json?.access_token)).delegation_id), null);
  });

  test('concurrent redemptions spend the code once', async () => {
    const { returned, verifier } = await authorize('alice', 'mail.read');
    const results = await Promise.all([redeem(returned, verifier), redeem(returned, verifier)]);
    assert.deepEqual(results.map((result) => result.status).sort(), [200, 400]);
    const rejected = results.find((result) => result.status === 400);
    assert.equal(rejected?.json?.error, 'invalid_grant');

    // RFC 6749 §4.1.2: the losing request is a replay, so the winner's grant is revoked.
    const winner = results.find((result) => result.status === 200);
    assert.equal(await revokedReason(decodeJwt(String(winner?.json?.access_token)).delegation_id), 'authorization_code_replayed');
  });

  test('denied consent returns access_denied with iss', async () => {
    const { returned } = await authorize('alice', 'mail.read', 'deny');
    assert.equal(returned.searchParams.get('error'), 'access_denied');
    assert.equal(returned.searchParams.get('iss'), server.issuer);
  });

  test('unregistered redirect URI is shown, not redirected', async () => {
    const url = new URL(`${server.issuer}/authorize`);
    url.search = new URLSearchParams({ client_id: world.agent.client.client_id, redirect_uri: 'https://attacker.test/cb', response_type: 'code', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', resource: world.resource.identifier }).toString();
    const response = await fetch(url, { redirect: 'manual' });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('location'), null);
    assert.match(await response.text(), /redirect_uri is not registered/);
  });

  test('plain PKCE is refused at the redirect URI', async () => {
    const url = new URL(`${server.issuer}/authorize`);
    url.search = new URLSearchParams({ client_id: world.agent.client.client_id, redirect_uri: callback.url, response_type: 'code', code_challenge: 'x'.repeat(43), code_challenge_method: 'plain', resource: world.resource.identifier, state: 's1' }).toString();
    const response = await fetch(url, { redirect: 'manual' });
    assert.equal(response.status, 303);
    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(location.searchParams.get('error'), 'invalid_request');
    assert.equal(location.searchParams.get('state'), 's1');
  });
});
