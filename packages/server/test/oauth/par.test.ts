import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { sha256Hex } from '../../src/store/ids.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { launchBrowser, startCallbackServer, type CallbackServer } from '../browser.ts';
import { consentInBrowser, postForm, type CodeFlow } from './code-flow.ts';

const REQUEST_URI = /^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}$/;

describe('pushed authorization requests (RFC 9126) at /par', () => {
  let server: TestServer;
  let browser: Browser;
  let callback: CallbackServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let flow: CodeFlow;
  let agent: { clientId: string; secret: string };

  before(async () => {
    server = await startTestServer();
    callback = await startCallbackServer();
    world = await seedWorld(server.ctx, { redirectUri: callback.url });
    browser = await launchBrowser();
    agent = { clientId: world.agent.client.client_id, secret: world.agent.clientSecret ?? '' };
    const config = await client.discovery(new URL(server.issuer), agent.clientId, {}, client.ClientSecretBasic(agent.secret), { execute: [client.allowInsecureRequests] });
    flow = { browser, callback, config, resource: world.resource.identifier };
  });
  after(async () => {
    await browser.close();
    await callback.close();
    await server.stop();
  });

  /** Valid authorization request parameters for the agent; the verifier stays with the test. */
  async function authorizationParameters(overrides: Record<string, string> = {}) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const parameters: Record<string, string> = {
      response_type: 'code',
      client_id: agent.clientId,
      redirect_uri: callback.url,
      scope: 'mail.read',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      resource: world.resource.identifier,
      ...overrides,
    };
    return { parameters, verifier, state };
  }

  async function push(parameters: Record<string, string> | string, credentials = agent) {
    return postForm(`${server.issuer}/par`, parameters, credentials);
  }

  /** Opens /authorize without a session and returns the status, Location and page text. */
  async function openAuthorize(query: Record<string, string>) {
    const response = await fetch(`${server.issuer}/authorize?${new URLSearchParams(query).toString()}`, { redirect: 'manual' });
    return { status: response.status, location: response.headers.get('location'), text: await response.text() };
  }

  test('metadata names the endpoint', () => {
    const metadata = flow.config.serverMetadata();
    assert.equal(metadata.pushed_authorization_request_endpoint, `${server.issuer}/par`);
    assert.equal(metadata.require_pushed_authorization_requests, false);
  });

  test('openid-client flow through PAR', async () => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = await client.buildAuthorizationUrlWithPAR(flow.config, {
      redirect_uri: callback.url,
      scope: 'openid mail.read',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      resource: world.resource.identifier,
    });
    assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
    assert.match(url.searchParams.get('request_uri') ?? '', REQUEST_URI);

    const returned = await consentInBrowser(flow, url, 'alice');
    assert.equal(returned.searchParams.get('iss'), server.issuer);
    const tokens = await client.authorizationCodeGrant(flow.config, returned, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    assert.equal(tokens.scope, 'openid mail.read');
    assert.equal(decodeJwt(tokens.access_token).aud, world.resource.identifier);
    assert.equal(tokens.claims()?.sub, world.alice.id);

    // RFC 9126 §4: the request_uri is single use.
    const again = await openAuthorize({ client_id: agent.clientId, request_uri: url.searchParams.get('request_uri') ?? '' });
    assert.equal(again.status, 400);
    assert.equal(again.location, null);
    assert.match(again.text, /request_uri is unknown, expired or already used/);
  });

  test('push returns 201 and stores only a digest', async () => {
    const { parameters } = await authorizationParameters();
    const response = await push(parameters);
    assert.equal(response.status, 201);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.deepEqual(Object.keys(response.json ?? {}).sort(), ['expires_in', 'request_uri']);
    assert.equal(response.json?.expires_in, 90);
    const requestUri = String(response.json?.request_uri);
    assert.match(requestUri, REQUEST_URI);

    const row = await server.ctx.db.selectFrom('pushed_authorization_requests').selectAll().where('request_uri_hash', '=', sha256Hex(requestUri)).executeTakeFirstOrThrow();
    assert.equal(row.client_id, agent.clientId);
    assert.equal(JSON.stringify(row).includes(requestUri), false);
  });

  test('query parameters beside request_uri are ignored', async () => {
    const { parameters, verifier, state } = await authorizationParameters();
    const pushed = await push(parameters);
    const url = new URL(`${server.issuer}/authorize`);
    url.search = new URLSearchParams({ client_id: agent.clientId, request_uri: String(pushed.json?.request_uri), scope: 'mail.send', state: 'from-the-query' }).toString();

    const returned = await consentInBrowser(flow, url, 'alice');
    assert.equal(returned.searchParams.get('state'), state);
    const tokens = await client.authorizationCodeGrant(flow.config, returned, { pkceCodeVerifier: verifier, expectedState: state });
    assert.equal(tokens.scope, 'mail.read');
  });

  test('request_uri survives the sign-in redirect', async () => {
    const { parameters } = await authorizationParameters();
    const requestUri = String((await push(parameters)).json?.request_uri);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const response = await openAuthorize({ client_id: agent.clientId, request_uri: requestUri });
      assert.equal(response.status, 303);
      assert.match(response.location ?? '', /^\/login\?return_to=/);
    }
  });

  test('unusable request_uri is shown, not redirected', async () => {
    const { parameters } = await authorizationParameters();
    const requestUri = String((await push(parameters)).json?.request_uri);
    const expired = String((await push(parameters)).json?.request_uri);
    await server.ctx.db.updateTable('pushed_authorization_requests').set({ expires_at: 1 }).where('request_uri_hash', '=', sha256Hex(expired)).execute();

    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ['other client', { client_id: world.app.client.client_id, request_uri: requestUri }, /pushed by another client/],
      ['no client_id', { request_uri: requestUri }, /must also carry client_id/],
      ['unknown', { client_id: agent.clientId, request_uri: 'urn:ietf:params:oauth:request_uri:unknown' }, /unknown, expired or already used/],
      ['not issued here', { client_id: agent.clientId, request_uri: 'https://client.example/request.jwt' }, /not one this server issued/],
      ['expired', { client_id: agent.clientId, request_uri: expired }, /unknown, expired or already used/],
    ];
    for (const [name, query, message] of cases) {
      const response = await openAuthorize(query);
      assert.equal(response.status, 400, name);
      assert.equal(response.location, null, name);
      assert.match(response.text, message, name);
    }
  });

  test('invalid pushes get their error', async () => {
    const { parameters } = await authorizationParameters();
    const cases: Array<[string, Record<string, string> | string, number, Record<string, unknown>]> = [
      ['request_uri pushed', { ...parameters, request_uri: 'urn:ietf:params:oauth:request_uri:x' }, 400, { error: 'invalid_request', error_description: 'The request_uri parameter must not be sent to the pushed authorization request endpoint.' }],
      ['request object', { ...parameters, request: 'eyJhbGciOiJub25lIn0.e30.' }, 400, { error: 'request_not_supported', error_description: 'Request objects are not supported; send the authorization request parameters in the form body.' }],
      ['other client_id', { ...parameters, client_id: world.app.client.client_id }, 400, { error: 'invalid_request', error_description: 'client_id does not match the authenticated client.' }],
      ['unregistered redirect_uri', { ...parameters, redirect_uri: 'https://attacker.test/cb' }, 400, { error: 'invalid_request', error_description: 'The redirect_uri is not registered for this client.' }],
      ['plain PKCE', { ...parameters, code_challenge_method: 'plain' }, 400, { error: 'invalid_request', error_description: 'code_challenge_method must be S256.' }],
      ['implicit flow', { ...parameters, response_type: 'token' }, 400, { error: 'unsupported_response_type', error_description: 'Only response_type=code is supported.' }],
      ['unknown resource', { ...parameters, resource: 'https://unknown.example/api' }, 400, { error: 'invalid_target', error_description: 'The resource is not registered with this server.' }],
      ['bad scope character', { ...parameters, scope: 'mail"read' }, 400, { error: 'invalid_scope', error_description: 'The scope parameter contains a character that RFC 6749 §3.3 does not allow.' }],
      ['repeated state', `${new URLSearchParams(parameters).toString()}&state=again`, 400, { error: 'invalid_request', error_description: 'The state parameter must appear only once.' }],
    ];
    for (const [name, body, status, expected] of cases) {
      const response = await push(body);
      assert.equal(response.status, status, name);
      assert.deepEqual(response.json, expected, name);
    }

    const anonymous = await postForm(`${server.issuer}/par`, parameters);
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json?.error, 'invalid_client');
  });
});
