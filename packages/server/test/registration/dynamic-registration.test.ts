import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import type { Browser } from 'playwright-core';
import { sha256Hex } from '../../src/store/ids.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { launchBrowser, startCallbackServer, type CallbackServer } from '../browser.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { consentInBrowser, postForm, readResponse } from '../oauth/code-flow.ts';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE } from '../gateway/world.ts';

type Response = Awaited<ReturnType<typeof readResponse>>;

describe('dynamic client registration (RFC 7591) at /register', () => {
  let server: TestServer;
  let admin: AdminApi;
  let callback: CallbackServer;
  let browser: Browser;
  let world: Awaited<ReturnType<typeof seedWorld>>;

  before(async () => {
    server = await startTestServer();
    admin = await adminApi(server);
    callback = await startCallbackServer();
    browser = await launchBrowser();
    world = await seedWorld(server.ctx, { redirectUri: callback.url });
  });

  after(async () => {
    await browser.close();
    await callback.close();
    await server.stop();
  });

  const registerRaw = async (body: string, contentType: string): Promise<Response> => readResponse(await fetch(`${server.issuer}/register`, { method: 'POST', headers: { 'content-type': contentType }, body }));

  const register = (metadata: unknown) => registerRaw(JSON.stringify(metadata), 'application/json');

  const serverMetadata = async () => (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;

  const storedClient = (clientId: string) => server.ctx.db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();

  const countClients = async () => Number((await server.ctx.db.selectFrom('clients').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

  const auditEntries = async (event: string) => {
    const rows = await server.ctx.db.selectFrom('audit_log').select('entry').orderBy('seq').execute();
    return rows.map((row) => JSON.parse(row.entry) as Record<string, unknown>).filter((entry) => entry.event === event);
  };

  /** A complete, valid authorization request with PKCE S256 for `clientId` (RFC 6749 §4.1.1, RFC 7636 §4.3). */
  const authorizeUrl = (clientId: string, redirectUri = callback.url) =>
    `${server.issuer}/authorize?${new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: redirectUri,
      scope: 'mail.read',
      state: 'state-1',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      resource: world.resource.identifier,
    }).toString()}`;

  const tokenRequest = (form: Record<string, string>, credentials?: { clientId: string; secret: string }) => postForm(`${server.issuer}/token`, form, credentials);

  function assertOAuthError(response: Response, status: number, error: string): void {
    assert.equal(response.status, status, response.text);
    assert.equal(response.json?.error, error, String(response.json?.error_description));
    assert.equal(typeof response.json?.error_description, 'string');
  }

  // Filled in by the tests in order: registration first, then the administrator's decision.
  let publicClientId: string;
  let confidential: { clientId: string; secret: string };

  test('closed policy rejects registration', async () => {
    const policy = await admin.call('GET', '/registration-policy');
    assert.equal(policy.status, 200);
    assert.deepEqual(policy.json, { dynamic_registration: false, metadata_documents: false, metadata_document_hosts: [] });

    const metadata = await serverMetadata();
    assert.equal(metadata.registration_endpoint, undefined);
    assert.equal(metadata.client_id_metadata_document_supported, undefined);
    assert.deepEqual(metadata.token_endpoint_auth_methods_supported, ['client_secret_basic', 'private_key_jwt']);

    const before = await countClients();
    const response = await register({ redirect_uris: [callback.url], token_endpoint_auth_method: 'none' });
    assertOAuthError(response, 403, 'access_denied');
    assert.equal(await countClients(), before);
  });

  test('open policy advertises the registration endpoint', async () => {
    const updated = await admin.call('PUT', '/registration-policy', { dynamic_registration: true });
    assert.equal(updated.status, 200);
    assert.deepEqual(updated.json, { dynamic_registration: true, metadata_documents: false, metadata_document_hosts: [] });

    // RFC 8414 §2: registration_endpoint; a public client authenticates with `none` (RFC 7591 §2).
    const metadata = await serverMetadata();
    assert.equal(metadata.registration_endpoint, `${server.issuer}/register`);
    assert.equal(metadata.client_id_metadata_document_supported, undefined);
    assert.deepEqual(metadata.token_endpoint_auth_methods_supported, ['client_secret_basic', 'private_key_jwt', 'none']);

    const audit = await auditEntries('registration_policy.updated');
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.actor, `client:${admin.clientId}`);
  });

  test('public client gets no secret', async () => {
    const response = await register({
      redirect_uris: [callback.url],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      client_name: 'Notes helper',
      logo_uri: 'https://notes.example.test/logo.png', software_id: 'x' });
    assert.equal(response.status, 201, response.text);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const body = response.json ?? {};

    // RFC 7591 §3.2.1: the client information response, with the metadata as registered.
    assert.match(String(body.client_id), /^reg_/);
    assert.equal(typeof body.client_id_issued_at, 'number');
    assert.ok(Math.abs(Number(body.client_id_issued_at) - Date.now() / 1000) < 60);
    assert.deepEqual(body.redirect_uris, [callback.url]);
    assert.equal(body.token_endpoint_auth_method, 'none');
    assert.deepEqual(body.grant_types, ['authorization_code', 'refresh_token']);
    assert.deepEqual(body.response_types, ['code']);
    assert.equal(body.client_name, 'Notes helper');
    assert.equal('client_secret' in body, false);
    assert.equal('client_secret_expires_at' in body, false);
    // RFC 7591 §2: unknown members are ignored, and not echoed as if registered.
    assert.equal('logo_uri' in body, false);
    assert.equal('software_id' in body, false);

    publicClientId = String(body.client_id);
    const stored = await storedClient(publicClientId);
    assert.equal(stored?.kind, 'registered');
    assert.equal(stored?.registration, 'dynamic');
    assert.equal(stored?.token_endpoint_auth_method, 'none');
    assert.equal(stored?.secret_digest, null);
    assert.equal(stored?.name, `Notes helper (${publicClientId})`);
  });

  test('client_secret_basic secret is returned once', async () => {
    const response = await register({ redirect_uris: [callback.url] });
    assert.equal(response.status, 201, response.text);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const body = response.json ?? {};
    // RFC 7591 §2: token_endpoint_auth_method defaults to client_secret_basic, grant_types to authorization_code.
    assert.equal(body.token_endpoint_auth_method, 'client_secret_basic');
    assert.deepEqual(body.grant_types, ['authorization_code']);
    assert.equal(typeof body.client_secret, 'string');
    assert.ok(String(body.client_secret).length >= 32);
    // RFC 7591 §3.2.1: 0 means the secret does not expire.
    assert.equal(body.client_secret_expires_at, 0);
    assert.equal(body.client_name, undefined);

    confidential = { clientId: String(body.client_id), secret: String(body.client_secret) };
    const stored = await storedClient(confidential.clientId);
    assert.equal(stored?.secret_digest, sha256Hex(confidential.secret));
    assert.equal(stored?.name, `Unnamed client (${confidential.clientId})`);
    assert.equal(JSON.stringify(stored).includes(confidential.secret), false);
    assert.equal(server.logs.join('').includes(confidential.secret), false);

    const listed = await admin.call('GET', '/registered-clients');
    assert.equal(JSON.stringify(listed.json).includes(confidential.secret), false);
  });

  test('private_key_jwt client registers its jwks', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
    const response = await register({ redirect_uris: [callback.url], token_endpoint_auth_method: 'private_key_jwt', jwks });
    assert.equal(response.status, 201, response.text);
    const body = response.json ?? {};
    assert.equal(body.token_endpoint_auth_method, 'private_key_jwt');
    assert.deepEqual(body.jwks, jwks);
    assert.equal('client_secret' in body, false);

    const stored = await storedClient(String(body.client_id));
    assert.deepEqual(JSON.parse(stored?.jwks ?? 'null'), jwks);
    assert.equal(stored?.secret_digest, null);
  });

  test('bad metadata is rejected with its RFC 7591 error', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const publicJwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1' }] };
    const privateJwks = { keys: [{ ...(await exportJWK(privateKey)), kid: 'k1' }] };
    // RFC 7591 §3.2.2: invalid_redirect_uri for a bad redirect URI, invalid_client_metadata otherwise.
    const cases: Array<[string, unknown, string]> = [
      ['http redirect URI off loopback', { redirect_uris: ['http://notes.example.test/callback'] }, 'invalid_redirect_uri'],
      ['redirect URI with fragment', { redirect_uris: ['https://notes.example.test/callback#top'] }, 'invalid_redirect_uri'],
      ['javascript: redirect URI', { redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
      ['relative redirect URI', { redirect_uris: ['/callback'] }, 'invalid_redirect_uri'],
      ['no redirect URIs', { client_name: 'Nothing' }, 'invalid_redirect_uri'],
      ['empty redirect URIs', { redirect_uris: [] }, 'invalid_redirect_uri'],
      ['jwks_uri', { redirect_uris: [callback.url], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://notes.example.test/jwks' }, 'invalid_client_metadata'],
      ['private_key_jwt without jwks', { redirect_uris: [callback.url], token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
      ['jwks without private_key_jwt', { redirect_uris: [callback.url], token_endpoint_auth_method: 'none', jwks: publicJwks }, 'invalid_client_metadata'],
      ['private key in jwks', { redirect_uris: [callback.url], token_endpoint_auth_method: 'private_key_jwt', jwks: privateJwks }, 'invalid_client_metadata'],
      ['client_secret_post', { redirect_uris: [callback.url], token_endpoint_auth_method: 'client_secret_post' }, 'invalid_client_metadata'],
      ['client_credentials grant', { redirect_uris: [callback.url], grant_types: ['client_credentials'] }, 'invalid_client_metadata'],
      ['token exchange grant', { redirect_uris: [callback.url], grant_types: [TOKEN_EXCHANGE] }, 'invalid_client_metadata'],
      ['refresh_token grant alone', { redirect_uris: [callback.url], grant_types: ['refresh_token'] }, 'invalid_client_metadata'],
      ['implicit response type', { redirect_uris: [callback.url], response_types: ['token'] }, 'invalid_client_metadata'],
      ['empty client_name', { redirect_uris: [callback.url], client_name: ' ' }, 'invalid_client_metadata'],
      ['array body', [{ redirect_uris: [callback.url] }], 'invalid_client_metadata'],
      ['string body', 'hello', 'invalid_client_metadata'],
      ['null body', null, 'invalid_client_metadata'],
    ];

    const before = await countClients();
    for (const [name, body, error] of cases) {
      const response = await register(body);
      assert.equal(response.status, 400, `${name}: ${response.text}`);
      assert.equal(response.json?.error, error, `${name}: ${String(response.json?.error_description)}`);
      assert.equal(typeof response.json?.error_description, 'string', name);
    }
    assert.equal(await countClients(), before);
  });

  test('malformed request bodies are OAuth errors', async () => {
    const brokenJson = await registerRaw('{"redirect_uris": [', 'application/json');
    assertOAuthError(brokenJson, 400, 'invalid_request');

    // A form body parses to strings, so redirect_uris is not an array.
    const form = await registerRaw(new URLSearchParams({ redirect_uris: callback.url }).toString(), 'application/x-www-form-urlencoded');
    assert.equal(form.status, 400, form.text);
    assert.equal(form.json?.error, 'invalid_redirect_uri');
  });

  test('registered client gets an error page at /authorize', async () => {
    for (const clientId of [publicClientId, confidential.clientId]) {
      const response = await readResponse(await fetch(authorizeUrl(clientId), { redirect: 'manual' }));
      // RFC 9700 §4.11.2: never a redirect to a redirect URI the client chose for itself.
      assert.equal(response.status, 400);
      assert.equal(response.headers.get('location'), null);
      assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(response.text, /registered itself and an administrator has not yet made it an agent/);
    }
  });

  test('registered client gets unauthorized_client at /token', async () => {
    // RFC 6749 §5.2: the client is authenticated but may not use the grant.
    const code = await tokenRequest({ grant_type: 'authorization_code', client_id: publicClientId, code: 'unknown', redirect_uri: callback.url, code_verifier: client.randomPKCECodeVerifier() });
    assertOAuthError(code, 400, 'unauthorized_client');
    assert.match(String(code.json?.error_description), /waiting for an administrator/);

    const credentials = await tokenRequest({ grant_type: 'client_credentials', resource: world.resource.identifier }, confidential);
    assertOAuthError(credentials, 400, 'unauthorized_client');

    // A wrong secret is still invalid_client, so the check above ran after authentication.
    const wrongSecret = await tokenRequest({ grant_type: 'client_credentials' }, { clientId: confidential.clientId, secret: `${confidential.secret}x` });
    assertOAuthError(wrongSecret, 401, 'invalid_client');
  });

  test('registered client cannot push a request', async () => {
    const response = await postForm(`${server.issuer}/par`, {
      client_id: publicClientId,
      response_type: 'code',
      redirect_uri: callback.url,
      scope: 'mail.read',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      resource: world.resource.identifier,
    });
    assertOAuthError(response, 400, 'invalid_request');
    assert.match(String(response.json?.error_description), /registered itself/);
  });

  test('make-agent rejects bad requests', async () => {
    const missingName = await admin.call('POST', `/registered-clients/${publicClientId}/make-agent`, { roles: ['mail-reader'] });
    assert.equal(missingName.status, 400);
    assert.match(missingName.type, /^application\/problem\+json/);

    const unknownRole = await admin.call('POST', `/registered-clients/${publicClientId}/make-agent`, { name: 'Notes helper', roles: ['no-such-role'] });
    assert.equal(unknownRole.status, 400);
    assert.match(String(unknownRole.json.detail), /Role no-such-role was not found/);

    const takenName = await admin.call('POST', `/registered-clients/${publicClientId}/make-agent`, { name: 'Mail assistant' });
    assert.equal(takenName.status, 409);

    const unknownClient = await admin.call('POST', '/registered-clients/reg_unknown/make-agent', { name: 'Someone' });
    assert.equal(unknownClient.status, 404);

    const notRegistered = await admin.call('POST', `/registered-clients/${world.agent.client.client_id}/make-agent`, { name: 'Someone' });
    assert.equal(notRegistered.status, 404);

    assert.equal((await storedClient(publicClientId))?.kind, 'registered');
  });

  test('make-agent turns the client into an agent', async () => {
    const listedBefore = await admin.call('GET', '/registered-clients');
    const idsBefore = (listedBefore.json.items as Array<{ client_id: string }>).map((item) => item.client_id);
    assert.ok(idsBefore.includes(publicClientId));

    const agentView = await admin.call('POST', `/registered-clients/${publicClientId}/make-agent`, { name: 'Notes helper', roles: ['mail-reader'] });
    assert.equal(agentView.status, 200, JSON.stringify(agentView.json));
    assert.equal(agentView.json.kind, 'agent');
    assert.equal(agentView.json.name, 'Notes helper');
    assert.equal(agentView.json.registration, 'dynamic');
    assert.equal(agentView.json.token_endpoint_auth_method, 'none');
    assert.deepEqual(agentView.json.roles, ['mail-reader']);
    assert.equal(agentView.json.require_dpop, false);

    const again = await admin.call('POST', `/registered-clients/${publicClientId}/make-agent`, { name: 'Notes helper 2' });
    assert.equal(again.status, 404);

    const listedAfter = await admin.call('GET', '/registered-clients');
    assert.equal((listedAfter.json.items as Array<{ client_id: string }>).some((item) => item.client_id === publicClientId), false);

    const madeConfidential = await admin.call('POST', `/registered-clients/${confidential.clientId}/make-agent`, { name: 'Backup helper', roles: ['mail-reader'] });
    assert.equal(madeConfidential.status, 200, JSON.stringify(madeConfidential.json));
  });

  /** Runs the authorization request with PKCE S256 for `clientId` in Chromium as alice and returns the code. */
  async function grantCode(clientId: string, metadata: Partial<client.ClientMetadata>, authentication: client.ClientAuth) {
    const config = await client.discovery(new URL(server.issuer), clientId, metadata, authentication, { execute: [client.allowInsecureRequests] });
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: callback.url,
      scope: 'mail.read',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: client.randomState(),
      resource: world.resource.identifier,
    });
    const returned = await consentInBrowser({ browser, callback, config, resource: world.resource.identifier }, url, 'alice');
    const code = returned.searchParams.get('code');
    assert.ok(code !== null, returned.href);
    return { code, verifier };
  }

  test('public agent runs the code flow with PKCE', async () => {
    const { code, verifier } = await grantCode(publicClientId, { token_endpoint_auth_method: 'none' }, client.None());

    // RFC 6749 §4.1.3: a public client sends client_id in the body and no credentials.
    const redeemed = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: callback.url, code_verifier: verifier, client_id: publicClientId });
    assert.equal(redeemed.status, 200, redeemed.text);
    const claims = decodeJwt(String(redeemed.json?.access_token));
    assert.equal(claims.client_id, publicClientId);
    assert.equal(claims.sub, world.alice.id);
    assert.deepEqual(claims.act, { sub: publicClientId });
    assert.equal(claims.scope, 'mail.read');

    // OAuth 2.1 §4.3.1: a public client's refresh token rotates on use.
    const refreshToken = String(redeemed.json?.refresh_token);
    const rotated = await tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: publicClientId });
    assert.equal(rotated.status, 200, rotated.text);
    assert.notEqual(rotated.json?.refresh_token, refreshToken);
    assertOAuthError(await tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: publicClientId }), 400, 'invalid_grant');

    // RFC 7662 §2.1: introspection needs an authenticated caller, which a public client is not.
    const introspection = await postForm(`${server.issuer}/introspect`, { token: String(rotated.json?.access_token), client_id: publicClientId });
    assertOAuthError(introspection, 401, 'invalid_client');
  });

  test('agent without refresh_token grant gets none', async () => {
    const { code, verifier } = await grantCode(confidential.clientId, {}, client.ClientSecretBasic(confidential.secret));
    const redeemed = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: callback.url, code_verifier: verifier }, confidential);
    assert.equal(redeemed.status, 200, redeemed.text);
    assert.equal(typeof redeemed.json?.access_token, 'string');
    // RFC 7591 §2: the client registered only authorization_code, the default.
    assert.equal(redeemed.json?.refresh_token, undefined);
    assertOAuthError(await tokenRequest({ grant_type: 'refresh_token', refresh_token: 'unknown' }, confidential), 400, 'unauthorized_client');
  });

  test('self-registered agent keeps to the code flow', async () => {
    const message = /only the authorization_code and refresh_token grants/;

    const publicCredentials = await tokenRequest({ grant_type: 'client_credentials', client_id: publicClientId, resource: world.resource.identifier });
    assertOAuthError(publicCredentials, 400, 'unauthorized_client');
    assert.match(String(publicCredentials.json?.error_description), message);

    const confidentialCredentials = await tokenRequest({ grant_type: 'client_credentials', resource: world.resource.identifier }, confidential);
    assertOAuthError(confidentialCredentials, 400, 'unauthorized_client');
    assert.match(String(confidentialCredentials.json?.error_description), message);

    // RFC 8693: token exchange would let the client act on a person's token without consent.
    const subject = await tokenRequest({ grant_type: 'client_credentials', resource: world.resource.identifier, scope: 'mail.read' }, { clientId: world.agent.client.client_id, secret: world.agent.clientSecret ?? '' });
    assert.equal(subject.status, 200, subject.text);
    const exchange = await tokenRequest({ grant_type: TOKEN_EXCHANGE, client_id: publicClientId, subject_token: String(subject.json?.access_token), subject_token_type: ACCESS_TOKEN_TYPE });
    assertOAuthError(exchange, 400, 'unauthorized_client');
    const confidentialExchange = await tokenRequest({ grant_type: TOKEN_EXCHANGE, subject_token: String(subject.json?.access_token), subject_token_type: ACCESS_TOKEN_TYPE }, confidential);
    assertOAuthError(confidentialExchange, 400, 'unauthorized_client');
  });

  test('audit log records registration and make-agent', async () => {
    const registered = await auditEntries('client.registered');
    assert.equal(registered.length, 3);
    const publicEntry = registered.find((entry) => entry.agent === publicClientId);
    assert.deepEqual(publicEntry?.target, { registration: 'dynamic', auth_method: 'none', redirect_uris: [callback.url] });
    assert.equal(JSON.stringify(registered).includes(confidential.secret), false);

    const madeAgent = await auditEntries('client.made_agent');
    assert.deepEqual(
      madeAgent.map((entry) => entry.agent),
      [publicClientId, confidential.clientId],
    );
    assert.equal(madeAgent[0]?.actor, `client:${admin.clientId}`);
    assert.deepEqual(madeAgent[0]?.target, { name: 'Notes helper', registration: 'dynamic', roles: ['mail-reader'] });
  });

  test('closing the policy stops new registrations only', async () => {
    const closed = await admin.call('PUT', '/registration-policy', { dynamic_registration: false });
    assert.equal(closed.status, 200);
    assertOAuthError(await register({ redirect_uris: [callback.url], token_endpoint_auth_method: 'none' }), 403, 'access_denied');
    assert.equal((await serverMetadata()).registration_endpoint, undefined);

    // An agent an administrator approved still authenticates: the grant fails, not the client.
    const stillKnown = await tokenRequest({ grant_type: 'refresh_token', refresh_token: 'unknown', client_id: publicClientId });
    assertOAuthError(stillKnown, 400, 'invalid_grant');
  });
});
