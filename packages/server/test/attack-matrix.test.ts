import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import * as client from 'openid-client';
import type { Browser } from 'playwright-core';
import { createClient } from '../src/agents/clients.ts';
import { issueAccessToken } from '../src/oauth/access-token.ts';
import { createDelegation } from '../src/oauth/delegation.ts';
import { issueIdToken } from '../src/oauth/id-token.ts';
import { issueRefreshToken } from '../src/oauth/refresh-token.ts';
import { newId, nowSeconds } from '../src/store/ids.ts';
import { saveRegistrationPolicy } from '../src/registration/policy.ts';
import { startTestServer, type TestServer } from './harness.ts';
import { createRole, seedWorld } from './fixtures.ts';
import { launchBrowser, startCallbackServer, type CallbackServer } from './browser.ts';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE, agentOwnToken, createWorld, delegatedToken, startUpstream, type Upstream, type World } from './gateway/world.ts';
import { basicAuthorization, createProof, generateDpopKey, type DpopKey } from './dpop/proofs.ts';
import type { CodeFlow } from './oauth/code-flow.ts';
import { call, dpopDelegatedToken, forgeFrom, grantCode, postForm, publicKeyAsHmacSecret, unsignedFrom, type Outcome } from './attack-matrix-setup.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const REFRESH_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:refresh_token';
const BEARER_INVALID_TOKEN = /^Bearer realm="mandate", error="invalid_token", error_description="[^"]+"$/;
const DPOP_CHALLENGE = (error: string) => new RegExp(`^DPoP realm="mandate", algs="[^"]+", error="${error}", error_description="[^"]+"$`);
const BASIC_CHALLENGE = /^Basic realm="mandate"/;

/**
 * Checks one rejection: the status, the RFC 6749 §5.2 / RFC 6750 §3.1 `error`, and the
 * `WWW-Authenticate` field (a pattern, or null when the response must have none).
 */
function assertRejected(outcome: Outcome, status: number, error: string, challenge: RegExp | null): void {
  assert.equal(outcome.status, status, `status (body ${outcome.text.slice(0, 300)})`);
  assert.equal(outcome.json?.error, error, `error (${String(outcome.json?.error_description)})`);
  assert.equal(typeof outcome.json?.error_description, 'string');
  if (challenge === null) assert.equal(outcome.headers.get('www-authenticate'), null);
  else assert.match(outcome.headers.get('www-authenticate') ?? '', challenge);
}

/** Checks an authorization error sent back to the client's redirect URI (RFC 6749 §4.1.2.1, RFC 9207 `iss`). */
function assertRedirectedError(outcome: Outcome, redirectUri: string, issuer: string, error: string, state?: string): void {
  assert.equal(outcome.status, 303);
  const location = new URL(outcome.headers.get('location') ?? 'about:blank');
  assert.equal(`${location.origin}${location.pathname}`, redirectUri);
  assert.equal(location.searchParams.get('error'), error);
  assert.equal(location.searchParams.get('iss'), issuer);
  if (state !== undefined) assert.equal(location.searchParams.get('state'), state);
  assert.equal(location.searchParams.get('code'), null);
}

/** Checks the error page that replaces a redirect when the client or redirect URI cannot be trusted (RFC 9700 §4.11.2). */
function assertErrorPage(outcome: Outcome, message: RegExp): void {
  assert.equal(outcome.status, 400);
  assert.equal(outcome.headers.get('location'), null);
  assert.match(outcome.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(outcome.text, message);
}

describe('attack matrix: each attack gets its exact rejection', () => {
  let server: TestServer;
  let nonceServer: TestServer;
  let upstream: Upstream;
  let callback: CallbackServer;
  let browser: Browser;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let gateway: World;
  let nonceGateway: World;
  let flow: CodeFlow;
  let genuine: string;
  let itemsUrl: string;
  let dpopKey: DpopKey;
  let dpopToken: string;
  let assertionClientId: string;
  let assertionKey: CryptoKey;
  /** Accepts client ID metadata documents, in loopback test mode so that `cimdHost` can serve one. */
  let cimdServer: TestServer;
  let cimdHost: Server;
  let cimdRequests: number;
  let cimdUrl: string;

  before(async () => {
    server = await startTestServer();
    nonceServer = await startTestServer({ dpopNoncesRequired: true });
    upstream = await startUpstream();
    callback = await startCallbackServer();
    browser = await launchBrowser();

    world = await seedWorld(server.ctx, { redirectUri: callback.url });
    gateway = await createWorld(server, upstream.url);
    nonceGateway = await createWorld(nonceServer, upstream.url);
    const config = await client.discovery(new URL(server.issuer), world.agent.client.client_id, {}, client.ClientSecretBasic(world.agent.clientSecret ?? ''), { execute: [client.allowInsecureRequests] });
    flow = { browser, callback, config, resource: world.resource.identifier };

    genuine = await delegatedToken(server, gateway, 'read');
    itemsUrl = `${server.issuer}/gateway/${gateway.resourceName}/items/1`;
    dpopKey = await generateDpopKey();
    dpopToken = await dpopDelegatedToken(server, gateway, dpopKey);

    // An agent that authenticates with private_key_jwt (RFC 7523 §2.2) and may read mail.
    const pair = await generateKeyPair('ES256');
    assertionKey = pair.privateKey;
    const keyAgent = await createClient(server.ctx, { kind: 'agent', name: 'Key agent', jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] } });
    assertionClientId = keyAgent.client.client_id;
    await server.ctx.db.insertInto('client_roles').values({ client_id: assertionClientId, role_id: world.roles.reader }).execute();

    // A loopback host for the Client ID Metadata Document cases; it counts the requests it gets.
    cimdServer = await startTestServer({ allowLoopbackClientMetadata: true });
    await saveRegistrationPolicy(cimdServer.ctx, { dynamicRegistration: false, metadataDocuments: true, metadataDocumentHosts: [] });
    cimdRequests = 0;
    cimdHost = createServer((_request, response) => {
      cimdRequests += 1;
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ client_id: 'https://other.example.test/client.json', redirect_uris: [callback.url] }));
    });
    await new Promise<void>((resolve) => cimdHost.listen(0, '127.0.0.1', resolve));
    cimdUrl = `http://127.0.0.1:${(cimdHost.address() as AddressInfo).port}/client.json`;
  });

  after(async () => {
    await new Promise<void>((resolve) => cimdHost.close(() => resolve()));
    await cimdServer.stop();
    await browser.close();
    await callback.close();
    await upstream.close();
    await nonceServer.stop();
    await server.stop();
  });

  const gatewayGet = (authorization?: string, proof?: string, path = '/items/1', target: TestServer = server, world: World = gateway) =>
    call(`${target.issuer}/gateway/${world.resourceName}${path}`, { headers: { ...(authorization === undefined ? {} : { authorization }), ...(proof === undefined ? {} : { dpop: proof }) } });

  const authorizeUrl = (params: Array<[string, string]>) => `${server.issuer}/authorize?${new URLSearchParams(params).toString()}`;

  /** Builds a complete, valid authorization request for the seeded agent, with the given parameters replaced or removed. */
  const authorizationParams = (changes: Record<string, string | undefined> = {}): Array<[string, string]> => {
    const base: Record<string, string | undefined> = {
      response_type: 'code',
      client_id: world.agent.client.client_id,
      redirect_uri: callback.url,
      scope: 'mail.read',
      state: 'state-1',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      resource: world.resource.identifier,
      ...changes,
    };
    return Object.entries(base).filter((entry): entry is [string, string] => entry[1] !== undefined);
  };

  const agentAuthorization = () => basicAuthorization(world.agent.client.client_id, world.agent.clientSecret ?? '');
  const tokenUrl = () => `${server.issuer}/token`;

  const redeem = (code: string, verifier: string, redirectUri = callback.url) =>
    postForm(tokenUrl(), [['grant_type', 'authorization_code'], ['code', code], ['code_verifier', verifier], ['redirect_uri', redirectUri]], { authorization: agentAuthorization() });

  const introspect = (token: string) => postForm(`${server.issuer}/introspect`, [['token', token]], { authorization: basicAuthorization(world.app.client.client_id, world.app.clientSecret ?? '') });

  async function clientAssertion(claims: Record<string, unknown> = {}, key: CryptoKey = assertionKey): Promise<string> {
    const now = nowSeconds();
    return new SignJWT({ iss: assertionClientId, sub: assertionClientId, aud: `${server.issuer}/token`, jti: newId('jti'), iat: now, exp: now + 60, ...claims }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(key);
  }

  const withAssertion = (assertion: string) => postForm(tokenUrl(), [['grant_type', 'client_credentials'], ['resource', world.resource.identifier], ['client_assertion_type', JWT_BEARER], ['client_assertion', assertion]]);

  // The control case: without it, every rejection below could come from a broken setup.
  test('control: genuine delegated token passes', async () => {
    const outcome = await gatewayGet(`Bearer ${genuine}`);
    assert.equal(outcome.status, 200);
  });

  // --- Access token validation at the gateway (RFC 9068 §4, RFC 6750 §3.1) ---

  test('access token with alg none (RFC 9068 §4 step 5)', async () => {
    assertRejected(await gatewayGet(`Bearer ${unsignedFrom(genuine)}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('access token HS256 signed with the public key (RFC 8725 §3.1)', async () => {
    const forged = await forgeFrom(server, genuine, { header: { alg: 'HS256' }, key: await publicKeyAsHmacSecret(server) });
    assertRejected(await gatewayGet(`Bearer ${forged}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('access token with unknown kid (RFC 9068 §4 step 5)', async () => {
    const stranger = await generateKeyPair('EdDSA');
    const forged = await forgeFrom(server, genuine, { header: { alg: 'EdDSA', kid: 'unknown-kid' }, key: stranger.privateKey });
    assertRejected(await gatewayGet(`Bearer ${forged}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('access token by stranger under Mandate kid (RFC 9068 §4 step 5)', async () => {
    const stranger = await generateKeyPair('EdDSA');
    const forged = await forgeFrom(server, genuine, { header: { alg: 'EdDSA' }, key: stranger.privateKey });
    assertRejected(await gatewayGet(`Bearer ${forged}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('access token expired (RFC 9068 §4 step 6)', async () => {
    const forged = await forgeFrom(server, genuine, { claims: { iat: nowSeconds() - 1200, exp: nowSeconds() - 600 } });
    assertRejected(await gatewayGet(`Bearer ${forged}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('access token with nbf in the future (RFC 7519 §4.1.5)', async () => {
    const forged = await forgeFrom(server, genuine, { claims: { nbf: nowSeconds() + 600 } });
    assertRejected(await gatewayGet(`Bearer ${forged}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('access token with wrong iss (RFC 9068 §4 step 3)', async () => {
    const forged = await forgeFrom(server, genuine, { claims: { iss: 'https://issuer.example.test' } });
    assertRejected(await gatewayGet(`Bearer ${forged}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('access token with wrong aud (RFC 9068 §4 step 4, RFC 8707 §2)', async () => {
    const forged = await forgeFrom(server, genuine, { claims: { aud: world.resource.identifier } });
    assertRejected(await gatewayGet(`Bearer ${forged}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('genuine token of another resource (RFC 8707 §2)', async () => {
    const other = await issueAccessToken(server.ctx, { subject: world.alice.id, clientId: world.app.client.client_id, audience: world.resource.identifier, scope: ['mail.read'], lifetimeSeconds: 600 });
    assertRejected(await gatewayGet(`Bearer ${other.token}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('ID token as access token (RFC 9068 §4 step 1)', async () => {
    const idToken = await issueIdToken(server.ctx, { user: gateway.user, clientId: gateway.agentId, nonce: null, authTime: nowSeconds() });
    assertRejected(await gatewayGet(`Bearer ${idToken}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('access token with wrong typ (RFC 9068 §2.1)', async () => {
    const forged = await forgeFrom(server, genuine, { header: { typ: 'JWT' } });
    assertRejected(await gatewayGet(`Bearer ${forged}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('access token with a changed scope claim (RFC 7515 §5.2)', async () => {
    const [header, , signature] = genuine.split('.');
    const payload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(genuine.split('.')[1] ?? '', 'base64url').toString('utf8')), scope: 'read write purge' })).toString('base64url');
    assertRejected(await gatewayGet(`Bearer ${header}.${payload}.${signature}`), 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('request without access token (RFC 6750 §3.1)', async () => {
    const outcome = await gatewayGet();
    assert.equal(outcome.status, 401);
    // RFC 6750 §3.1: a request with no authentication gets a challenge without an error code.
    assert.equal(outcome.headers.get('www-authenticate'), 'Bearer realm="mandate"');
  });

  test('access token in the query string (RFC 6750 §2.3, RFC 9700 §4.3.2)', async () => {
    const outcome = await gatewayGet(undefined, undefined, `/items/1?access_token=${genuine}`);
    assertRejected(outcome, 400, 'invalid_request', /^Bearer realm="mandate", error="invalid_request", error_description="[^"]+"$/);
  });

  test('access token in a form body (RFC 6750 §2.2)', async () => {
    const outcome = await call(`${server.issuer}/gateway/${gateway.resourceName}/items`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `access_token=${genuine}` });
    assertRejected(outcome, 400, 'invalid_request', /^Bearer realm="mandate", error="invalid_request", error_description="[^"]+"$/);
  });

  test('method override field at the gateway', async () => {
    const outcome = await call(`${server.issuer}/gateway/${gateway.resourceName}/items/1`, { headers: { authorization: `Bearer ${genuine}`, 'x-http-method-override': 'DELETE' } });
    assertRejected(outcome, 400, 'invalid_request', null);
  });

  test('agent own token at the gateway (RFC 8693 §4.1)', async () => {
    const own = await agentOwnToken(server, gateway);
    assertRejected(await gatewayGet(`Bearer ${own}`), 403, 'access_denied', null);
  });

  test('alg none token at userinfo (OIDC Core §5.3.3)', async () => {
    const outcome = await call(`${server.issuer}/userinfo`, { headers: { authorization: `Bearer ${unsignedFrom(genuine)}` } });
    assertRejected(outcome, 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('ID token at userinfo (RFC 9068 §4 step 1)', async () => {
    const idToken = await issueIdToken(server.ctx, { user: world.alice, clientId: world.agent.client.client_id, nonce: null, authTime: nowSeconds() });
    const outcome = await call(`${server.issuer}/userinfo`, { headers: { authorization: `Bearer ${idToken}` } });
    assertRejected(outcome, 401, 'invalid_token', BEARER_INVALID_TOKEN);
  });

  test('expired token at introspection (RFC 7662 §2.2)', async () => {
    const forged = await forgeFrom(server, genuine, { claims: { iat: nowSeconds() - 1200, exp: nowSeconds() - 600 } });
    const outcome = await introspect(forged);
    assert.equal(outcome.status, 200);
    assert.equal(outcome.text, '{"active":false}');
  });

  test('HS256 public-key token at introspection (RFC 7662 §2.2)', async () => {
    const forged = await forgeFrom(server, genuine, { header: { alg: 'HS256' }, key: await publicKeyAsHmacSecret(server) });
    const outcome = await introspect(forged);
    assert.equal(outcome.status, 200);
    assert.equal(outcome.text, '{"active":false}');
  });

  // --- DPoP (RFC 9449) ---

  test('DPoP control: bound token with fresh proof passes', async () => {
    const outcome = await gatewayGet(`DPoP ${dpopToken}`, await createProof(dpopKey, { htm: 'GET', htu: itemsUrl, accessToken: dpopToken }));
    assert.equal(outcome.status, 200);
  });

  test('DPoP proof replayed (RFC 9449 §11.1)', async () => {
    const proof = await createProof(dpopKey, { htm: 'GET', htu: itemsUrl, accessToken: dpopToken });
    assert.equal((await gatewayGet(`DPoP ${dpopToken}`, proof)).status, 200);
    assertRejected(await gatewayGet(`DPoP ${dpopToken}`, proof), 401, 'invalid_dpop_proof', DPOP_CHALLENGE('invalid_dpop_proof'));
  });

  test('DPoP proof with wrong htm (RFC 9449 §4.3 step 8)', async () => {
    const proof = await createProof(dpopKey, { htm: 'POST', htu: itemsUrl, accessToken: dpopToken });
    assertRejected(await gatewayGet(`DPoP ${dpopToken}`, proof), 401, 'invalid_dpop_proof', DPOP_CHALLENGE('invalid_dpop_proof'));
  });

  test('DPoP proof with wrong htu (RFC 9449 §4.3 step 9)', async () => {
    const proof = await createProof(dpopKey, { htm: 'GET', htu: `${server.issuer}/gateway/${gateway.resourceName}/items/2`, accessToken: dpopToken });
    assertRejected(await gatewayGet(`DPoP ${dpopToken}`, proof), 401, 'invalid_dpop_proof', DPOP_CHALLENGE('invalid_dpop_proof'));
  });

  test('DPoP proof with wrong ath (RFC 9449 §4.3 step 12)', async () => {
    const proof = await createProof(dpopKey, { htm: 'GET', htu: itemsUrl, accessToken: `${dpopToken}x` });
    assertRejected(await gatewayGet(`DPoP ${dpopToken}`, proof), 401, 'invalid_dpop_proof', DPOP_CHALLENGE('invalid_dpop_proof'));
  });

  test('DPoP proof by another key (RFC 9449 §4.3 step 12)', async () => {
    const proof = await createProof(await generateDpopKey(), { htm: 'GET', htu: itemsUrl, accessToken: dpopToken });
    assertRejected(await gatewayGet(`DPoP ${dpopToken}`, proof), 401, 'invalid_dpop_proof', DPOP_CHALLENGE('invalid_dpop_proof'));
  });

  test('DPoP proof with private key in jwk (RFC 9449 §4.3 step 7)', async () => {
    const privateJwk = await exportJWK(dpopKey.privateKey);
    const proof = await createProof(dpopKey, { htm: 'POST', htu: tokenUrl(), header: { jwk: privateJwk } });
    const outcome = await postForm(tokenUrl(), [['grant_type', 'client_credentials'], ['resource', world.resource.identifier]], { authorization: agentAuthorization(), dpop: proof });
    // RFC 9449 §5: the token endpoint answers a bad proof with 400 and no challenge.
    assertRejected(outcome, 400, 'invalid_dpop_proof', null);
  });

  test('DPoP proof with wrong typ (RFC 9449 §4.3 step 4)', async () => {
    const proof = await createProof(dpopKey, { htm: 'POST', htu: tokenUrl(), header: { typ: 'JWT' } });
    const outcome = await postForm(tokenUrl(), [['grant_type', 'client_credentials'], ['resource', world.resource.identifier]], { authorization: agentAuthorization(), dpop: proof });
    assertRejected(outcome, 400, 'invalid_dpop_proof', null);
  });

  test('DPoP proof with stale iat (RFC 9449 §4.3 step 11)', async () => {
    const proof = await createProof(dpopKey, { htm: 'POST', htu: tokenUrl(), iat: nowSeconds() - 3600 });
    const outcome = await postForm(tokenUrl(), [['grant_type', 'client_credentials'], ['resource', world.resource.identifier]], { authorization: agentAuthorization(), dpop: proof });
    assertRejected(outcome, 400, 'invalid_dpop_proof', null);
  });

  test('DPoP proof missing nonce at token endpoint (RFC 9449 §8)', async () => {
    const proof = await createProof(dpopKey, { htm: 'POST', htu: `${nonceServer.issuer}/token`, accessToken: undefined });
    const outcome = await postForm(`${nonceServer.issuer}/token`, [['grant_type', 'client_credentials'], ['resource', nonceGateway.identifier], ['scope', 'read']], { authorization: basicAuthorization(nonceGateway.agentId, nonceGateway.agentSecret), dpop: proof });
    assertRejected(outcome, 400, 'use_dpop_nonce', null);
    assert.match(outcome.headers.get('dpop-nonce') ?? '', /^\S+$/);
  });

  test('DPoP proof missing nonce at gateway (RFC 9449 §9)', async () => {
    const token = await dpopDelegatedToken(nonceServer, nonceGateway, dpopKey);
    const url = `${nonceServer.issuer}/gateway/${nonceGateway.resourceName}/items/1`;
    const outcome = await gatewayGet(`DPoP ${token}`, await createProof(dpopKey, { htm: 'GET', htu: url, accessToken: token }), '/items/1', nonceServer, nonceGateway);
    assertRejected(outcome, 401, 'use_dpop_nonce', DPOP_CHALLENGE('use_dpop_nonce'));
    assert.match(outcome.headers.get('dpop-nonce') ?? '', /^\S+$/);
  });

  test('DPoP-bound token under Bearer (RFC 9449 §7.2)', async () => {
    assertRejected(await gatewayGet(`Bearer ${dpopToken}`), 401, 'invalid_token', DPOP_CHALLENGE('invalid_token'));
  });

  test('bearer token under DPoP scheme (RFC 9449 §7.1)', async () => {
    const proof = await createProof(dpopKey, { htm: 'GET', htu: itemsUrl, accessToken: genuine });
    assertRejected(await gatewayGet(`DPoP ${genuine}`, proof), 401, 'invalid_token', DPOP_CHALLENGE('invalid_token'));
  });

  test('DPoP-bound token at userinfo (RFC 9449 §7.2)', async () => {
    const outcome = await call(`${server.issuer}/userinfo`, { headers: { authorization: `Bearer ${dpopToken}` } });
    assertRejected(outcome, 401, 'invalid_token', DPOP_CHALLENGE('invalid_token'));
  });

  test('userinfo proof with wrong ath (RFC 9449 §4.3 step 12)', async () => {
    const proof = await createProof(dpopKey, { htm: 'GET', htu: `${server.issuer}/userinfo`, accessToken: `${dpopToken}x` });
    const outcome = await call(`${server.issuer}/userinfo`, { headers: { authorization: `DPoP ${dpopToken}`, dpop: proof } });
    assertRejected(outcome, 401, 'invalid_dpop_proof', DPOP_CHALLENGE('invalid_dpop_proof'));
  });

  // --- Authorization endpoint (RFC 6749 §4.1, RFC 7636, RFC 9700) ---

  test('PKCE missing (RFC 9700 §2.1.1, RFC 7636 §4.4.1)', async () => {
    const outcome = await call(authorizeUrl(authorizationParams({ code_challenge: undefined, code_challenge_method: undefined })));
    assertRedirectedError(outcome, callback.url, server.issuer, 'invalid_request', 'state-1');
  });

  test('PKCE method plain (RFC 9700 §2.1.1)', async () => {
    const outcome = await call(authorizeUrl(authorizationParams({ code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' })));
    assertRedirectedError(outcome, callback.url, server.issuer, 'invalid_request', 'state-1');
  });

  test('PKCE method absent defaults to plain (RFC 7636 §4.3)', async () => {
    const outcome = await call(authorizeUrl(authorizationParams({ code_challenge_method: undefined })));
    assertRedirectedError(outcome, callback.url, server.issuer, 'invalid_request', 'state-1');
  });

  test('implicit response_type token (RFC 9700 §2.1.2)', async () => {
    const outcome = await call(authorizeUrl(authorizationParams({ response_type: 'token' })));
    assertRedirectedError(outcome, callback.url, server.issuer, 'unsupported_response_type', 'state-1');
  });

  test('duplicated scope at authorize (RFC 6749 §3.1)', async () => {
    const outcome = await call(authorizeUrl([...authorizationParams(), ['scope', 'mail.send']]));
    assertRedirectedError(outcome, callback.url, server.issuer, 'invalid_request', 'state-1');
  });

  test('duplicated redirect_uri at authorize (RFC 6749 §3.1)', async () => {
    const outcome = await call(authorizeUrl([...authorizationParams(), ['redirect_uri', 'https://attacker.example.test/callback']]));
    assertErrorPage(outcome, /redirect_uri/);
  });

  test('duplicated client_id at authorize (RFC 6749 §3.1)', async () => {
    const outcome = await call(authorizeUrl([...authorizationParams(), ['client_id', world.app.client.client_id]]));
    assertErrorPage(outcome, /client_id/);
  });

  test('unknown resource at authorize (RFC 8707 §2)', async () => {
    const outcome = await call(authorizeUrl(authorizationParams({ resource: 'https://unknown.example.test/api' })));
    assertRedirectedError(outcome, callback.url, server.issuer, 'invalid_target', 'state-1');
  });

  test('redirect URI mismatch (RFC 9700 §4.1.3)', async () => {
    const outcome = await call(authorizeUrl(authorizationParams({ redirect_uri: `${callback.url}/other` })));
    assertErrorPage(outcome, /redirect_uri is not registered/);
  });

  test('open redirect to a foreign host (RFC 9700 §4.11.2)', async () => {
    const outcome = await call(authorizeUrl(authorizationParams({ redirect_uri: 'https://attacker.example.test/callback', response_type: 'token' })));
    assertErrorPage(outcome, /redirect_uri is not registered/);
  });

  test('open redirect by added query (RFC 9700 §4.1.3)', async () => {
    const outcome = await call(authorizeUrl(authorizationParams({ redirect_uri: `${callback.url}?next=https://attacker.example.test/` })));
    assertErrorPage(outcome, /redirect_uri is not registered/);
  });

  test('open redirect by userinfo host trick (RFC 9700 §4.1.3)', async () => {
    const registered = new URL(callback.url);
    const outcome = await call(authorizeUrl(authorizationParams({ redirect_uri: `http://${registered.host}@attacker.example.test${registered.pathname}` })));
    assertErrorPage(outcome, /redirect_uri is not registered/);
  });

  test('open redirect through unknown client (RFC 9700 §4.11.2)', async () => {
    const outcome = await call(authorizeUrl(authorizationParams({ client_id: 'agt_unknown', redirect_uri: 'https://attacker.example.test/callback', code_challenge: undefined })));
    assertErrorPage(outcome, /client is unknown or disabled/);
  });

  // --- Code redemption at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6) ---

  test('PKCE wrong verifier (RFC 7636 §4.6)', async () => {
    const granted = await grantCode(flow);
    assertRejected(await redeem(granted.code, client.randomPKCECodeVerifier()), 400, 'invalid_grant', null);
  });

  test('PKCE verifier missing at token endpoint (RFC 7636 §4.5)', async () => {
    const granted = await grantCode(flow);
    const outcome = await postForm(tokenUrl(), [['grant_type', 'authorization_code'], ['code', granted.code], ['redirect_uri', callback.url]], { authorization: agentAuthorization() });
    assertRejected(outcome, 400, 'invalid_request', null);
  });

  test('code replay revokes its tokens (RFC 6749 §4.1.2)', async () => {
    const granted = await grantCode(flow);
    const first = await redeem(granted.code, granted.verifier);
    assert.equal(first.status, 200, first.text);

    assertRejected(await redeem(granted.code, granted.verifier), 400, 'invalid_grant', null);

    // RFC 6749 §4.1.2: the tokens issued with a replayed code are revoked.
    const userinfo = await call(`${server.issuer}/userinfo`, { headers: { authorization: `Bearer ${String(first.json?.access_token)}` } });
    assertRejected(userinfo, 401, 'invalid_token', BEARER_INVALID_TOKEN);
    const refreshed = await postForm(tokenUrl(), [['grant_type', 'refresh_token'], ['refresh_token', String(first.json?.refresh_token)]], { authorization: agentAuthorization() });
    assertRejected(refreshed, 400, 'invalid_grant', null);
  });

  test('redirect_uri mismatch at token endpoint (RFC 6749 §4.1.3)', async () => {
    const granted = await grantCode(flow);
    assertRejected(await redeem(granted.code, granted.verifier, `${callback.url}/other`), 400, 'invalid_grant', null);
  });

  test('code redeemed by another client (RFC 6749 §4.1.3)', async () => {
    const granted = await grantCode(flow);
    const outcome = await postForm(tokenUrl(), [['grant_type', 'authorization_code'], ['code', granted.code], ['code_verifier', granted.verifier], ['redirect_uri', callback.url]], { authorization: basicAuthorization(world.app.client.client_id, world.app.clientSecret ?? '') });
    assertRejected(outcome, 400, 'invalid_grant', null);
  });

  test('duplicated code at token endpoint (RFC 6749 §3.2)', async () => {
    const outcome = await postForm(tokenUrl(), [['grant_type', 'authorization_code'], ['code', 'a'], ['code', 'b'], ['code_verifier', client.randomPKCECodeVerifier()], ['redirect_uri', callback.url]], { authorization: agentAuthorization() });
    assertRejected(outcome, 400, 'invalid_request', null);
  });

  // --- Refresh tokens (RFC 9700 §4.14.2) ---

  test('refresh token reuse revokes the family (RFC 9700 §4.14.2)', async () => {
    const delegation = await createDelegation(server.ctx, { userId: world.alice.id, clientId: world.agent.client.client_id, resourceId: world.resource.id, scope: ['mail.read'], source: 'consent' });
    const original = await issueRefreshToken(server.ctx, { clientId: world.agent.client.client_id, userId: world.alice.id, delegationId: delegation.id, resourceId: world.resource.id, scope: ['mail.read'] });
    const refresh = (token: string) => postForm(tokenUrl(), [['grant_type', 'refresh_token'], ['refresh_token', token]], { authorization: agentAuthorization() });

    const rotated = await refresh(original);
    assert.equal(rotated.status, 200, rotated.text);
    assertRejected(await refresh(original), 400, 'invalid_grant', null);
    assertRejected(await refresh(String(rotated.json?.refresh_token)), 400, 'invalid_grant', null);
  });

  test('refresh token of another client (RFC 6749 §6)', async () => {
    const delegation = await createDelegation(server.ctx, { userId: world.alice.id, clientId: world.agent.client.client_id, resourceId: world.resource.id, scope: ['mail.read'], source: 'consent' });
    const token = await issueRefreshToken(server.ctx, { clientId: world.agent.client.client_id, userId: world.alice.id, delegationId: delegation.id, resourceId: world.resource.id, scope: ['mail.read'] });
    const outcome = await postForm(tokenUrl(), [['grant_type', 'refresh_token'], ['refresh_token', token]], { authorization: basicAuthorization(world.app.client.client_id, world.app.clientSecret ?? '') });
    assertRejected(outcome, 400, 'invalid_grant', null);
  });

  // --- Token exchange (RFC 8693) ---

  const exchangeAs = (subjectToken: string, extra: Array<[string, string]> = []) =>
    postForm(tokenUrl(), [['grant_type', TOKEN_EXCHANGE], ['subject_token', subjectToken], ['subject_token_type', ACCESS_TOKEN_TYPE], ...extra], { authorization: agentAuthorization() });

  const aliceMailToken = async (mayAct?: string) =>
    (await issueAccessToken(server.ctx, { subject: world.alice.id, clientId: world.app.client.client_id, audience: world.resource.identifier, scope: ['mail.read'], lifetimeSeconds: 600, mayAct })).token;

  test('exchange by actor that may_act excludes (RFC 8693 §4.4)', async () => {
    await createDelegation(server.ctx, { userId: world.alice.id, clientId: world.agent.client.client_id, resourceId: world.resource.id, scope: ['mail.read', 'mail.send'], source: 'consent' });
    assertRejected(await exchangeAs(await aliceMailToken(assertionClientId)), 400, 'invalid_request', null);
  });

  test('scope widening through exchange (RFC 8693 §2.1)', async () => {
    await createDelegation(server.ctx, { userId: world.alice.id, clientId: world.agent.client.client_id, resourceId: world.resource.id, scope: ['mail.read', 'mail.send'], source: 'consent' });
    assertRejected(await exchangeAs(await aliceMailToken(), [['scope', 'mail.read mail.send']]), 400, 'invalid_scope', null);
  });

  test('exchange to another resource (RFC 8693 §2.2.2)', async () => {
    assertRejected(await exchangeAs(await aliceMailToken(), [['resource', gateway.identifier]]), 400, 'invalid_target', null);
  });

  test('exchange of an expired subject token (RFC 8693 §2.2.2)', async () => {
    const expired = await forgeFrom(server, await aliceMailToken(), { claims: { iat: nowSeconds() - 1200, exp: nowSeconds() - 600 } });
    assertRejected(await exchangeAs(expired), 400, 'invalid_request', null);
  });

  test('DPoP-bound subject token exchanged without proof (RFC 9449 §4.3)', async () => {
    const form: Array<[string, string]> = [['grant_type', TOKEN_EXCHANGE], ['subject_token', dpopToken], ['subject_token_type', ACCESS_TOKEN_TYPE], ['scope', 'read']];
    assertRejected(await postForm(tokenUrl(), form, { authorization: basicAuthorization(gateway.agentId, gateway.agentSecret) }), 400, 'invalid_request', null);
  });

  test('DPoP-bound subject token exchanged with another key (RFC 9449 §4.3)', async () => {
    const form: Array<[string, string]> = [['grant_type', TOKEN_EXCHANGE], ['subject_token', dpopToken], ['subject_token_type', ACCESS_TOKEN_TYPE], ['scope', 'read']];
    const proof = await createProof(await generateDpopKey(), { htm: 'POST', htu: tokenUrl() });
    assertRejected(await postForm(tokenUrl(), form, { authorization: basicAuthorization(gateway.agentId, gateway.agentSecret), dpop: proof }), 400, 'invalid_request', null);
  });

  test('spent refresh token as subject_token revokes the family (RFC 9700 §4.14.2)', async () => {
    const delegation = await createDelegation(server.ctx, { userId: world.alice.id, clientId: world.agent.client.client_id, resourceId: world.resource.id, scope: ['mail.read'], source: 'consent' });
    const original = await issueRefreshToken(server.ctx, { clientId: world.agent.client.client_id, userId: world.alice.id, delegationId: delegation.id, resourceId: world.resource.id, scope: ['mail.read'] });
    const exchangeRefreshToken = (token: string) => postForm(tokenUrl(), [['grant_type', TOKEN_EXCHANGE], ['subject_token', token], ['subject_token_type', REFRESH_TOKEN_TYPE]], { authorization: agentAuthorization() });

    const rotated = await exchangeRefreshToken(original);
    assert.equal(rotated.status, 200, rotated.text);
    assertRejected(await exchangeRefreshToken(original), 400, 'invalid_request', null);
    assertRejected(await exchangeRefreshToken(String(rotated.json?.refresh_token)), 400, 'invalid_request', null);
  });

  test('unknown resource at token endpoint (RFC 8707 §2)', async () => {
    const outcome = await postForm(tokenUrl(), [['grant_type', 'client_credentials'], ['resource', 'https://unknown.example.test/api']], { authorization: agentAuthorization() });
    assertRejected(outcome, 400, 'invalid_target', null);
  });

  // --- Client assertions (RFC 7523 §3, RFC 7521 §5.2) ---

  test('client assertion control passes (RFC 7523 §2.2)', async () => {
    const outcome = await withAssertion(await clientAssertion());
    assert.equal(outcome.status, 200, outcome.text);
  });

  test('client assertion replayed (RFC 7523 §3 item 7)', async () => {
    const assertion = await clientAssertion();
    assert.equal((await withAssertion(assertion)).status, 200);
    assertRejected(await withAssertion(assertion), 401, 'invalid_client', BASIC_CHALLENGE);
  });

  test('client assertion with wrong aud (RFC 7523 §3 item 3)', async () => {
    assertRejected(await withAssertion(await clientAssertion({ aud: 'https://issuer.example.test/token' })), 401, 'invalid_client', BASIC_CHALLENGE);
  });

  test('client assertion expired (RFC 7523 §3 item 4)', async () => {
    assertRejected(await withAssertion(await clientAssertion({ iat: nowSeconds() - 600, exp: nowSeconds() - 300 })), 401, 'invalid_client', BASIC_CHALLENGE);
  });

  test('client assertion signed by another key (RFC 7523 §3 item 9)', async () => {
    const stranger = await generateKeyPair('ES256');
    assertRejected(await withAssertion(await clientAssertion({}, stranger.privateKey)), 401, 'invalid_client', BASIC_CHALLENGE);
  });

  // --- Client ID Metadata Documents (MCP authorization, draft-ietf-oauth-client-id-metadata-document) ---

  const cimdAuthorize = (clientId: string) =>
    call(
      `${cimdServer.issuer}/authorize?${new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: callback.url, scope: 'mail.read', state: 'state-1', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }).toString()}`,
    );
  const cimdToken = (clientId: string) => postForm(`${cimdServer.issuer}/token`, [['grant_type', 'authorization_code'], ['code', 'x'], ['redirect_uri', callback.url], ['code_verifier', client.randomPKCECodeVerifier()], ['client_id', clientId]]);
  const cimdStored = (clientId: string) => cimdServer.ctx.db.selectFrom('clients').select('client_id').where('client_id', '=', clientId).executeTakeFirst();

  test('CIMD client_id differing from its URL', async () => {
    const before = cimdRequests;
    const description = 'The client_id in the metadata document differs from its URL.';
    const page = await cimdAuthorize(cimdUrl);
    assertErrorPage(page, /differs from its URL/);
    assert.ok(page.text.includes(`<p class="error">${description}</p>`), page.text);
    assert.equal(cimdRequests, before + 1);

    // RFC 6749 §5.2: at the token endpoint the rejected document leaves the client unauthenticated.
    const outcome = await cimdToken(cimdUrl);
    assertRejected(outcome, 401, 'invalid_client', BASIC_CHALLENGE);
    assert.equal(outcome.json?.error_description, description);
    assert.equal(outcome.headers.get('cache-control'), 'no-store');
    assert.equal(cimdRequests, before + 2);
    assert.equal(await cimdStored(cimdUrl), undefined);
  });

  test('CIMD URL at a private address', async () => {
    const before = cimdRequests;
    const description = 'The client ID metadata document was refused: The URL points at an address that is not public.';
    // Loopback test mode admits only 127.0.0.1 and ::1. The IPv4-mapped form of the document host's
    // address, private networks and the cloud metadata address stay rejected.
    const port = new URL(cimdUrl).port;
    for (const clientId of [`https://[::ffff:127.0.0.1]:${port}/client.json`, 'https://10.0.0.1/client.json', 'https://169.254.169.254/latest/meta-data/client.json']) {
      const page = await cimdAuthorize(clientId);
      assertErrorPage(page, /not public/);
      assert.ok(page.text.includes(`<p class="error">${description}</p>`), page.text);
      const outcome = await cimdToken(clientId);
      assertRejected(outcome, 401, 'invalid_client', BASIC_CHALLENGE);
      assert.equal(outcome.json?.error_description, description);
      assert.equal(await cimdStored(clientId), undefined);
    }
    assert.equal(cimdRequests, before);
  });

  // --- Findings of the security review: hand-off, logout, introspection, code redemption ---

  test('agent takes over another agent token (RFC 8693 §4.4)', async () => {
    // An agent that may read the gateway resource, but that neither the person nor the holder chose.
    const role = await createRole(server.ctx, 'token-taker-reader', [[gateway.identifier, 'read']]);
    const taker = await createClient(server.ctx, { kind: 'agent', name: 'Token taker' });
    await server.ctx.db.insertInto('client_roles').values({ client_id: taker.client.client_id, role_id: role }).execute();
    const form: Array<[string, string]> = [['grant_type', TOKEN_EXCHANGE], ['subject_token', await delegatedToken(server, gateway, 'read')], ['subject_token_type', ACCESS_TOKEN_TYPE], ['resource', gateway.identifier]];
    assertRejected(await postForm(tokenUrl(), form, { authorization: basicAuthorization(taker.client.client_id, taker.clientSecret ?? '') }), 400, 'invalid_request', null);
  });

  test('sub-agent keeps access its parent lost (RFC 8693 §4.1)', async () => {
    // The parent hands its token to a sub-agent, then loses its role: every agent of the act chain must still grant the call.
    const world = await createWorld(server, upstream.url);
    const role = await createRole(server.ctx, `chain-sub-reader-${world.resourceName}`, [[world.identifier, 'read']]);
    const sub = await createClient(server.ctx, { kind: 'agent', name: 'Chain sub-agent' });
    await server.ctx.db.insertInto('client_roles').values({ client_id: sub.client.client_id, role_id: role }).execute();
    const subAuthorization = basicAuthorization(sub.client.client_id, sub.clientSecret ?? '');
    const own = await postForm(tokenUrl(), [['grant_type', 'client_credentials'], ['resource', world.identifier], ['scope', 'read']], { authorization: subAuthorization });
    const handOn: Array<[string, string]> = [
      ['grant_type', TOKEN_EXCHANGE],
      ['subject_token', await delegatedToken(server, world, 'read')],
      ['subject_token_type', ACCESS_TOKEN_TYPE],
      ['actor_token', String(own.json?.access_token)],
      ['actor_token_type', ACCESS_TOKEN_TYPE],
      ['resource', world.identifier],
    ];
    const handed = await postForm(tokenUrl(), handOn, { authorization: basicAuthorization(world.agentId, world.agentSecret) });
    assert.equal(handed.status, 200, handed.text);

    await server.ctx.db.deleteFrom('client_roles').where('client_id', '=', world.agentId).execute();
    const outcome = await call(`${server.issuer}/gateway/${world.resourceName}/items`, { headers: { authorization: `Bearer ${String(handed.json?.access_token)}` } });
    assertRejected(outcome, 403, 'insufficient_scope', /error="insufficient_scope"/);
  });

  test('open redirect at logout through a self-registered client (RFC 9700 §4.11.2)', async () => {
    const attackerUri = 'https://attacker.example.test/signed-out';
    const registered = await createClient(server.ctx, { kind: 'registered', name: 'Self-registered logout client', redirectUris: ['https://attacker.example.test/cb'], postLogoutRedirectUris: [attackerUri], registration: { origin: 'dynamic' } });
    const outcome = await call(`${server.issuer}/logout?${new URLSearchParams({ client_id: registered.client.client_id, post_logout_redirect_uri: attackerUri }).toString()}`);
    assertErrorPage(outcome, /registered itself and an administrator has not yet made it an agent/);
  });

  test('introspection by an unrelated or self-registered client (RFC 7662 §4)', async () => {
    const token = await delegatedToken(server, gateway, 'read');
    const introspectAs = (authorization: string) => postForm(`${server.issuer}/introspect`, [['token', token]], { authorization });
    const byHolder = await introspectAs(basicAuthorization(gateway.agentId, gateway.agentSecret));
    assert.equal(byHolder.json?.active, true, byHolder.text);

    // RFC 7662 §2.2: the token is another client's, so this agent learns only that it is inactive.
    const byOtherAgent = await introspectAs(agentAuthorization());
    assert.equal(byOtherAgent.status, 200);
    assert.equal(byOtherAgent.text, '{"active":false}');

    const registered = await createClient(server.ctx, { kind: 'registered', name: 'Self-registered introspector', redirectUris: ['https://registered.example.test/cb'], registration: { origin: 'dynamic' } });
    assertRejected(await introspectAs(basicAuthorization(registered.client.client_id, registered.clientSecret ?? '')), 401, 'invalid_client', BASIC_CHALLENGE);
  });

  test('failed code redemption leaves the code (RFC 7636 §4.6)', async () => {
    const granted = await grantCode(flow);
    assertRejected(await redeem(granted.code, client.randomPKCECodeVerifier()), 400, 'invalid_grant', null);
    const redeemed = await redeem(granted.code, granted.verifier);
    assert.equal(redeemed.status, 200, redeemed.text);
  });
});
