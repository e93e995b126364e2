import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import type { Browser } from 'playwright-core';
import { nowSeconds } from '../../src/store/ids.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { launchBrowser, startCallbackServer, type CallbackServer } from '../browser.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { isGrantLive } from '../../src/oauth/grant-liveness.ts';
import type { AccessTokenClaims } from '../../src/oauth/access-token.ts';
import { consentInBrowser, postForm, readResponse } from '../oauth/code-flow.ts';
import { startDocumentServer, type DocumentResponse, type DocumentServer } from './document-server.ts';

type Response = Awaited<ReturnType<typeof readResponse>>;

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Creates a self-signed certificate for 127.0.0.1 with the openssl command line tool. */
function selfSignedCertificate(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('client ID metadata documents', () => {
  /** Loopback test mode on, and trusting the certificate of `tlsDocs`. */
  let server: TestServer;
  /** Loopback test mode off, as in production. */
  let strict: TestServer;
  let admin: AdminApi;
  let docs: DocumentServer;
  let tlsDocs: DocumentServer;
  let untrustedDocs: DocumentServer;
  let callback: CallbackServer;
  let browser: Browser;
  let world: Awaited<ReturnType<typeof seedWorld>>;

  before(async () => {
    const trusted = selfSignedCertificate();
    server = await startTestServer({ allowLoopbackClientMetadata: true }, { trustedCertificates: [trusted.cert] });
    strict = await startTestServer();
    admin = await adminApi(server);
    docs = await startDocumentServer();
    tlsDocs = await startDocumentServer(trusted);
    untrustedDocs = await startDocumentServer(selfSignedCertificate());
    callback = await startCallbackServer();
    browser = await launchBrowser();
    world = await seedWorld(server.ctx, { redirectUri: callback.url });
    const strictAdmin = await adminApi(strict);
    const opened = await strictAdmin.call('PUT', '/registration-policy', { metadata_documents: true });
    assert.equal(opened.status, 200);
  });

  after(async () => {
    await browser.close();
    await callback.close();
    await untrustedDocs.close();
    await tlsDocs.close();
    await docs.close();
    await strict.stop();
    await server.stop();
  });

  /** The metadata document of `clientId`: a public client of the callback server, with `changes` applied. */
  const documentOf = (clientId: string, changes: Record<string, unknown> = {}) => ({ client_id: clientId, client_name: 'Notes helper', redirect_uris: [callback.url], ...changes });

  /** Serves a valid document at `path` (with `changes` and response `headers`) and returns its URL, the client_id. */
  function serveDocument(path: string, changes: Record<string, unknown> = {}, headers: Record<string, string> = {}, host = docs): string {
    const clientId = `${host.origin}${path}`;
    host.serve(path, { headers, body: documentOf(clientId, changes) });
    return clientId;
  }

  /** Sends a complete authorization request with PKCE S256 for `clientId` (RFC 6749 §4.1.1) without following redirects. */
  async function authorize(clientId: string, target: TestServer = server, redirectUri = callback.url): Promise<Response> {
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: redirectUri,
      scope: 'mail.read',
      state: 'state-1',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      resource: world.resource.identifier,
    });
    return readResponse(await fetch(`${target.issuer}/authorize?${query.toString()}`, { redirect: 'manual' }));
  }

  /** Checks the error page that replaces a redirect when the client cannot be trusted (RFC 9700 §4.11.2). */
  function assertErrorPage(response: Response, message: RegExp, label = ''): void {
    assert.equal(response.status, 400, `${label} status`);
    assert.equal(response.headers.get('location'), null, `${label} location`);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/, label);
    assert.match(response.text, message, label);
  }

  const REGISTERED_PAGE = /registered itself and an administrator has not yet made it an agent/;

  const storedClient = (clientId: string, target: TestServer = server) => target.ctx.db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();

  const expiresAt = async (clientId: string) => Number((await storedClient(clientId))?.metadata_expires_at);

  const expireMetadata = (clientId: string) => server.ctx.db.updateTable('clients').set({ metadata_expires_at: nowSeconds() - 1 }).where('client_id', '=', clientId).execute();

  const auditEntries = async (event: string) => {
    const rows = await server.ctx.db.selectFrom('audit_log').select('entry').orderBy('seq').execute();
    return rows.map((row) => JSON.parse(row.entry) as Record<string, unknown>).filter((entry) => entry.event === event);
  };

  const serverMetadata = async () => (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;

  test('closed policy rejects URL client_ids', async () => {
    const clientId = serveDocument('/closed.json');
    assertErrorPage(await authorize(clientId), /does not accept client ID metadata documents/);

    const token = await postForm(`${server.issuer}/token`, { grant_type: 'authorization_code', code: 'x', client_id: clientId });
    assert.equal(token.status, 401);
    assert.equal(token.json?.error, 'invalid_client');
    assert.equal(docs.connections(), 0);
    assert.equal(await storedClient(clientId), undefined);

    assert.equal((await serverMetadata()).client_id_metadata_document_supported, undefined);
  });

  test('open policy advertises metadata documents', async () => {
    const opened = await admin.call('PUT', '/registration-policy', { metadata_documents: true });
    assert.equal(opened.status, 200);
    assert.deepEqual(opened.json, { dynamic_registration: false, metadata_documents: true, metadata_document_hosts: [] });

    const metadata = await serverMetadata();
    assert.equal(metadata.client_id_metadata_document_supported, true);
    assert.equal(metadata.registration_endpoint, undefined);
    assert.ok((metadata.token_endpoint_auth_methods_supported as string[]).includes('none'));
  });

  test('first use records a registered client', async () => {
    const clientId = serveDocument('/notes.json', { token_endpoint_auth_method: 'none', logo_uri: 'https://notes.example.test/logo.png' });
    assertErrorPage(await authorize(clientId), REGISTERED_PAGE);
    assert.equal(docs.requestsFor('/notes.json'), 1);

    const stored = await storedClient(clientId);
    assert.equal(stored?.kind, 'registered');
    assert.equal(stored?.registration, 'metadata_document');
    assert.equal(stored?.name, `Notes helper (${clientId})`);
    assert.equal(stored?.token_endpoint_auth_method, 'none');
    assert.equal(stored?.secret_digest, null);
    assert.deepEqual(JSON.parse(stored?.redirect_uris ?? '[]'), [callback.url]);

    const listed = await admin.call('GET', '/registered-clients');
    const item = (listed.json.items as Array<Record<string, unknown>>).find((entry) => entry.client_id === clientId);
    assert.equal(item?.registration, 'metadata_document');

    const audit = (await auditEntries('client.registered')).filter((entry) => entry.agent === clientId);
    assert.equal(audit.length, 1);
    assert.deepEqual(audit[0]?.target, { registration: 'metadata_document', auth_method: 'none', redirect_uris: [callback.url] });

    // RFC 6749 §5.2: the client is known but may do nothing yet.
    const token = await postForm(`${server.issuer}/token`, { grant_type: 'authorization_code', code: 'x', redirect_uri: callback.url, code_verifier: client.randomPKCECodeVerifier(), client_id: clientId });
    assert.equal(token.status, 400, token.text);
    assert.equal(token.json?.error, 'unauthorized_client');
  });

  test('document is fetched once while fresh', async () => {
    const clientId = serveDocument('/cached.json', {}, { 'cache-control': 'public, max-age=600' });
    for (let attempt = 0; attempt < 3; attempt += 1) assertErrorPage(await authorize(clientId), REGISTERED_PAGE);
    const token = await postForm(`${server.issuer}/token`, { grant_type: 'authorization_code', code: 'x', client_id: clientId });
    assert.equal(token.json?.error, 'unauthorized_client');
    assert.equal(docs.requestsFor('/cached.json'), 1);
    assert.ok(Math.abs((await expiresAt(clientId)) - (nowSeconds() + 600)) <= 5);

    // Once stale, the next use fetches the document again.
    await expireMetadata(clientId);
    assertErrorPage(await authorize(clientId), REGISTERED_PAGE);
    assert.equal(docs.requestsFor('/cached.json'), 2);
    assert.ok(Math.abs((await expiresAt(clientId)) - (nowSeconds() + 600)) <= 5);
  });

  test('cache lifetime follows headers within bounds', async () => {
    const soon = new Date(Date.now() + 2 * 3600 * 1000).toUTCString();
    const past = new Date(Date.now() - 3600 * 1000).toUTCString();
    // RFC 9111 §4.2.1, bounded to 60 s .. 24 h, and 300 s when the response has no caching header.
    const cases: Array<[string, Record<string, string>, number]> = [
      ['no header', {}, 300],
      ['max-age below the floor', { 'cache-control': 'max-age=5' }, 60],
      ['max-age above the ceiling', { 'cache-control': 'max-age=999999' }, 86400],
      ['max-age within bounds', { 'cache-control': 'max-age=3600' }, 3600],
      ['no-store', { 'cache-control': 'no-store' }, 60],
      ['no-cache', { 'cache-control': 'no-cache, max-age=3600' }, 60],
      ['s-maxage before max-age', { 'cache-control': 's-maxage=7200, max-age=120' }, 7200],
      ['Expires in two hours', { expires: soon }, 7200],
      ['Expires in the past', { expires: past }, 60],
      ['max-age before Expires', { 'cache-control': 'max-age=900', expires: soon }, 900],
      ['invalid max-age', { 'cache-control': 'max-age=soon' }, 300],
    ];
    for (const [index, [name, headers, seconds]] of cases.entries()) {
      const clientId = serveDocument(`/cache-${index}.json`, {}, headers);
      assertErrorPage(await authorize(clientId), REGISTERED_PAGE, name);
      const expected = nowSeconds() + seconds;
      assert.ok(Math.abs((await expiresAt(clientId)) - expected) <= 5, `${name}: expires at ${await expiresAt(clientId)}, expected about ${expected}`);
    }
  });

  test('unusable documents are rejected', async () => {
    const path = (name: string) => `/bad/${name}.json`;
    const url = (name: string) => `${docs.origin}${path(name)}`;
    const big = (size: number, name: string) => {
      const base = JSON.stringify({ ...documentOf(url(name)), padding: '' });
      return JSON.stringify({ ...documentOf(url(name)), padding: 'x'.repeat(size - base.length) });
    };
    docs.serve('/bad/target.json', { body: documentOf(url('redirect')) });

    const cases: Array<[string, DocumentResponse, RegExp]> = [
      // The metadata document draft: the document's client_id equals its URL as a simple string.
      ['differs', { body: documentOf('https://other.example.test/client.json') }, /The client_id in the metadata document differs from its URL\./],
      ['trailing-slash', { body: documentOf(`${url('trailing-slash')}/`) }, /differs from its URL/],
      ['missing-client-id', { body: { redirect_uris: [callback.url] } }, /differs from its URL/],
      ['secret', { body: documentOf(url('secret'), { client_secret: 'shared' }) }, /must not contain a client secret/],
      ['secret-expiry', { body: documentOf(url('secret-expiry'), { client_secret_expires_at: 0 }) }, /must not contain a client secret/],
      ['basic', { body: documentOf(url('basic'), { token_endpoint_auth_method: 'client_secret_basic' }) }, /cannot use a shared secret/],
      ['bad-redirect', { body: documentOf(url('bad-redirect'), { redirect_uris: ['http://notes.example.test/callback'] }) }, /redirect_uris\.0 must use https unless the host is loopback/],
      ['no-redirect', { body: documentOf(url('no-redirect'), { redirect_uris: [] }) }, /redirect_uris must list at least one redirect URI/],
      ['redirect', { status: 302, headers: { location: `${docs.origin}/bad/target.json` }, body: '' }, /HTTP 302 \(redirects are not followed\)/],
      ['not-found', { status: 404, body: documentOf(url('not-found')) }, /HTTP 404/],
      ['html', { headers: { 'content-type': 'text/html' }, body: JSON.stringify(documentOf(url('html'))) }, /must be served as application\/json/],
      ['invalid-json', { body: '{"client_id": ' }, /not valid JSON/],
      ['array', { body: [documentOf(url('array'))] }, /must be a JSON object/],
      ['too-large', { body: big(5 * 1024 + 1, 'too-large') }, /larger than 5120 bytes/],
    ];
    for (const [name, response, message] of cases) {
      docs.serve(path(name), response);
      assertErrorPage(await authorize(url(name)), message, name);
      assert.equal(docs.requestsFor(path(name)), 1, `${name} requests`);
      assert.equal(await storedClient(url(name)), undefined, `${name} stored`);
    }
    assert.equal(docs.requestsFor('/bad/target.json'), 0);

    // The limit itself is allowed.
    docs.serve(path('at-limit'), { body: big(5 * 1024, 'at-limit') });
    assertErrorPage(await authorize(url('at-limit')), REGISTERED_PAGE);
  });

  test('slow response headers time out', async () => {
    const clientId = serveDocument('/slow-headers.json');
    docs.serve('/slow-headers.json', { headerDelayMs: 8000, body: documentOf(clientId) });
    const started = Date.now();
    assertErrorPage(await authorize(clientId), /did not answer in time/);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 4500, `took ${elapsed} ms`);
    assert.ok(elapsed < 7000, `took ${elapsed} ms`);
    assert.equal(await storedClient(clientId), undefined);
  });

  test('slow response body times out', async () => {
    const clientId = `${docs.origin}/slow-body.json`;
    // One byte every 200 ms: no single gap is long, but the whole body would take about 20 s.
    docs.serve('/slow-body.json', { tricklePerByteMs: 200, body: documentOf(clientId) });
    const started = Date.now();
    assertErrorPage(await authorize(clientId), /in time/);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 4500, `took ${elapsed} ms`);
    assert.ok(elapsed < 7000, `took ${elapsed} ms`);
    assert.equal(await storedClient(clientId), undefined);
  });

  test('host allowlist limits document hosts', async () => {
    const clientId = serveDocument('/allowlist.json');
    const limited = await admin.call('PUT', '/registration-policy', { metadata_document_hosts: ['mcp.example.test'] });
    assert.deepEqual(limited.json.metadata_document_hosts, ['mcp.example.test']);
    assertErrorPage(await authorize(clientId), /Client ID metadata documents from 127\.0\.0\.1 are not allowed here\./);
    assert.equal(docs.requestsFor('/allowlist.json'), 0);

    await admin.call('PUT', '/registration-policy', { metadata_document_hosts: ['127.0.0.1'] });
    assertErrorPage(await authorize(clientId), REGISTERED_PAGE);
    assert.equal(docs.requestsFor('/allowlist.json'), 1);

    const badHost = await admin.call('PUT', '/registration-policy', { metadata_document_hosts: ['https://mcp.example.test'] });
    assert.equal(badHost.status, 400);
    const reset = await admin.call('PUT', '/registration-policy', { metadata_document_hosts: [] });
    assert.deepEqual(reset.json, { dynamic_registration: false, metadata_documents: true, metadata_document_hosts: [] });
  });

  test('client_id URL rules', async () => {
    const origin = docs.origin;
    const connections = docs.connections();
    // The metadata document draft: https, a path, no fragment, no credentials, no dot segments.
    const cases: Array<[string, RegExp]> = [
      [origin, /must have a path/],
      [`${origin}/`, /must have a path/],
      [`${origin}/notes.json#section`, /no fragment/],
      [`${origin}/notes.json#`, /no fragment/],
      [`http://user:secret@127.0.0.1:${docs.port}/notes.json`, /must not contain credentials/],
      [`${origin}/apps/../notes.json`, /must not contain \. or \.\. path segments/],
      [`${origin}/apps/./notes.json`, /must not contain \. or \.\. path segments/],
      // WHATWG URL parsing turns this path into /, so the path rule fires first.
      [`${origin}/apps/..`, /must have a path/],
      [`${origin}/apps/%2e%2e/notes.json`, /must not contain \. or \.\. path segments/],
      [`${origin}/apps/.%2E/notes.json`, /must not contain \. or \.\. path segments/],
      [`${origin}/apps\\..\\notes.json`, /must not contain \. or \.\. path segments/],
      ['http://mcp.example.test/notes.json', /must use https/],
      ['http://10.0.0.1/x', /must use https/],
      ['https://', /not a valid URL/],
      [`https://mcp.example.test/${'a'.repeat(2001)}`, /client is unknown or disabled/],
    ];
    for (const [clientId, message] of cases) assertErrorPage(await authorize(clientId), message, clientId);
    assert.equal(docs.connections(), connections);
  });

  test('private addresses are rejected in loopback test mode', async () => {
    const cases = ['https://10.0.0.1/x', 'https://169.254.169.254/latest/meta-data', 'https://[::ffff:10.0.0.1]/x', 'https://192.168.1.1/x', 'https://[fd00::1]/x', 'https://100.64.0.1/x'];
    for (const clientId of cases) assertErrorPage(await authorize(clientId), /The URL points at an address that is not public\./, clientId);
  });

  test('private addresses are rejected in production mode', async () => {
    const connections = docs.connections();
    const port = docs.port;
    const cases: Array<[string, RegExp]> = [
      [`http://127.0.0.1:${port}/notes.json`, /must use https/],
      [`https://localhost:${port}/notes.json`, /The URL host resolves to an address that is not public\./],
      [`https://127.0.0.1:${port}/notes.json`, /The URL points at an address that is not public\./],
      [`https://[::1]:${port}/notes.json`, /points at an address that is not public/],
      [`https://0x7f000001:${port}/notes.json`, /points at an address that is not public/],
      [`https://[::ffff:127.0.0.1]:${port}/notes.json`, /points at an address that is not public/],
      ['https://10.0.0.1/x', /points at an address that is not public/],
      ['https://169.254.169.254/latest/meta-data', /points at an address that is not public/],
      ['https://[::ffff:127.0.0.1]/x', /points at an address that is not public/],
      ['https://172.16.0.1/x', /points at an address that is not public/],
      ['https://[64:ff9b::7f00:1]/x', /points at an address that is not public/],
    ];
    for (const [clientId, message] of cases) {
      assertErrorPage(await authorize(clientId, strict), message, clientId);
      assert.equal(await storedClient(clientId, strict), undefined, clientId);
    }

    const token = await postForm(`${strict.issuer}/token`, { grant_type: 'authorization_code', code: 'x', client_id: `https://localhost:${port}/notes.json` });
    assert.equal(token.status, 401);
    assert.equal(token.json?.error, 'invalid_client');
    assert.equal(token.json?.error_description, 'The client ID metadata document was refused: The URL host resolves to an address that is not public.');
    assert.equal(token.headers.get('www-authenticate'), 'Basic realm="mandate", charset="UTF-8"');

    assert.equal(docs.connections(), connections);
  });

  test('https document needs a trusted certificate', async () => {
    const clientId = serveDocument('/tls.json', {}, {}, tlsDocs);
    assertErrorPage(await authorize(clientId), REGISTERED_PAGE);
    assert.equal(tlsDocs.requestsFor('/tls.json'), 1);

    const untrusted = serveDocument('/tls.json', {}, {}, untrustedDocs);
    assertErrorPage(await authorize(untrusted), /The document could not be fetched\./);
    assert.equal(untrustedDocs.requestsFor('/tls.json'), 0);
  });

  test('private_key_jwt document client authenticates', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const clientId = serveDocument('/keys.json', { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] } });
    // RFC 7523 §3: iss and sub are the client_id, aud the token endpoint.
    const assertion = (key: CryptoKey) =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(clientId).setSubject(clientId).setAudience(`${server.issuer}/token`).setJti(crypto.randomUUID()).setIssuedAt().setExpirationTime('2m').sign(key);
    const tokenWith = async (key: CryptoKey) => postForm(`${server.issuer}/token`, { grant_type: 'authorization_code', code: 'x', client_assertion_type: JWT_BEARER, client_assertion: await assertion(key) });

    const authenticated = await tokenWith(privateKey);
    assert.equal(authenticated.status, 400, authenticated.text);
    assert.equal(authenticated.json?.error, 'unauthorized_client');
    assert.equal((await storedClient(clientId))?.token_endpoint_auth_method, 'private_key_jwt');

    const stranger = await generateKeyPair('ES256');
    const forged = await tokenWith(stranger.privateKey);
    assert.equal(forged.status, 401);
    assert.equal(forged.json?.error, 'invalid_client');
    assert.equal(docs.requestsFor('/keys.json'), 1);
  });

  test('concurrent first uses store one client', async () => {
    const clientId = serveDocument('/concurrent.json');
    const responses = await Promise.all(Array.from({ length: 5 }, () => authorize(clientId)));
    for (const response of responses) assertErrorPage(response, REGISTERED_PAGE);
    const rows = await server.ctx.db.selectFrom('clients').select('client_id').where('client_id', '=', clientId).execute();
    assert.equal(rows.length, 1);
    assert.equal((await auditEntries('client.registered')).filter((entry) => entry.agent === clientId).length, 1);
  });

  test('made agent runs the code flow and follows its document', async () => {
    const clientId = serveDocument('/agent.json', { client_name: 'Self-chosen name', grant_types: ['authorization_code', 'refresh_token'] });
    assertErrorPage(await authorize(clientId), REGISTERED_PAGE);

    // The client_id is a URL, so the admin path carries it percent-encoded.
    const agentView = await admin.call('POST', `/registered-clients/${encodeURIComponent(clientId)}/make-agent`, { name: 'Notes agent', roles: ['mail-reader'] });
    assert.equal(agentView.status, 200, JSON.stringify(agentView.json));
    assert.equal(agentView.json.client_id, clientId);
    assert.equal(agentView.json.kind, 'agent');
    assert.equal(agentView.json.registration, 'metadata_document');
    assert.deepEqual(agentView.json.roles, ['mail-reader']);
    const madeAudit = (await auditEntries('client.made_agent')).filter((entry) => entry.agent === clientId);
    assert.deepEqual(madeAudit[0]?.target, { name: 'Notes agent', registration: 'metadata_document', roles: ['mail-reader'] });

    // The authorization code flow as a public client (RFC 6749 §2.1), with PKCE S256.
    const config = await client.discovery(new URL(server.issuer), clientId, { token_endpoint_auth_method: 'none' }, client.None(), { execute: [client.allowInsecureRequests] });
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
    const tokens = await postForm(`${server.issuer}/token`, { grant_type: 'authorization_code', code, redirect_uri: callback.url, code_verifier: verifier, client_id: clientId });
    assert.equal(tokens.status, 200, tokens.text);
    const claims = decodeJwt(String(tokens.json?.access_token));
    assert.equal(claims.client_id, clientId);
    assert.deepEqual(claims.act, { sub: clientId });
    assert.equal(claims.sub, world.alice.id);
    const fetchesSoFar = docs.requestsFor('/agent.json');
    assert.equal(fetchesSoFar, 1);

    // The document changes its redirect URI, and the stored copy stays in use until it expires.
    const newRedirectUri = `${callback.url}?v=2`;
    docs.serve('/agent.json', { body: documentOf(clientId, { client_name: 'Renamed itself', redirect_uris: [newRedirectUri], grant_types: ['authorization_code', 'refresh_token'] }) });
    assertErrorPage(await authorize(clientId, server, newRedirectUri), /redirect_uri is not registered/);
    assert.equal(docs.requestsFor('/agent.json'), fetchesSoFar);

    // Once fetched again, the changed redirect URI needs a new review: the client is registered again.
    await expireMetadata(clientId);
    assertErrorPage(await authorize(clientId, server, newRedirectUri), REGISTERED_PAGE);
    assert.equal(docs.requestsFor('/agent.json'), fetchesSoFar + 1);
    const reverted = await storedClient(clientId);
    assert.equal(reverted?.kind, 'registered');
    assert.equal(reverted?.name, 'Notes agent');
    assert.equal(reverted?.redirect_uris, JSON.stringify([newRedirectUri]));
    const review = (await auditEntries('client.review_required')).filter((entry) => entry.agent === clientId);
    assert.equal(review.length, 1);
    assert.deepEqual(review[0]?.target, { registration: 'metadata_document', changed_fields: ['redirect_uris'] });
    // Its access token from before is no longer live for introspection and userinfo either.
    assert.equal(await isGrantLive(server.ctx, claims as unknown as AccessTokenClaims), false);
    const refreshedWhileRegistered = await postForm(`${server.issuer}/token`, { grant_type: 'refresh_token', refresh_token: String(tokens.json?.refresh_token), client_id: clientId });
    assert.equal(refreshedWhileRegistered.status, 400, refreshedWhileRegistered.text);
    assert.equal(refreshedWhileRegistered.json?.error, 'unauthorized_client');

    // The administrator reviews it again, keeping its name; it kept its roles meanwhile.
    const reviewed = await admin.call('POST', `/registered-clients/${encodeURIComponent(clientId)}/make-agent`, { name: 'Notes agent' });
    assert.equal(reviewed.status, 200, JSON.stringify(reviewed.json));
    assert.equal(reviewed.json.kind, 'agent');
    assert.deepEqual(reviewed.json.roles, ['mail-reader']);
    const renewed = await authorize(clientId, server, newRedirectUri);
    assert.equal(renewed.status, 303, renewed.text);
    assert.match(renewed.headers.get('location') ?? '', /\/login/);
    assertErrorPage(await authorize(clientId), /redirect_uri is not registered/);

    // The administrator's decision stays: kind, name and roles do not follow the document.
    const stored = await storedClient(clientId);
    assert.equal(stored?.kind, 'agent');
    assert.equal(stored?.name, 'Notes agent');
    const agents = await admin.call('GET', '/agents');
    const listed = (agents.json.items as Array<Record<string, unknown>>).find((item) => item.client_id === clientId);
    assert.deepEqual(listed?.roles, ['mail-reader']);

    // A document that can no longer be fetched leaves nothing stale to use.
    docs.serve('/agent.json', { status: 404, body: '' });
    await expireMetadata(clientId);
    const refreshed = await postForm(`${server.issuer}/token`, { grant_type: 'refresh_token', refresh_token: String(tokens.json?.refresh_token), client_id: clientId });
    assert.equal(refreshed.status, 401, refreshed.text);
    assert.equal(refreshed.json?.error, 'invalid_client');
    assert.match(String(refreshed.json?.error_description), /HTTP 404/);
    assertErrorPage(await authorize(clientId, server, newRedirectUri), /HTTP 404/);
  });

  /** Serves a document at `path`, records its client and makes it an agent named `name`, and returns its client_id. */
  async function documentAgent(path: string, name: string, changes: Record<string, unknown> = {}): Promise<string> {
    const clientId = serveDocument(path, changes);
    assertErrorPage(await authorize(clientId), REGISTERED_PAGE);
    const made = await admin.call('POST', `/registered-clients/${encodeURIComponent(clientId)}/make-agent`, { name, roles: ['mail-reader'] });
    assert.equal(made.status, 200, JSON.stringify(made.json));
    return clientId;
  }

  test('reviewed field change needs a new review', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'doc-key-1', alg: 'ES256' };
    const { publicKey: otherPublicKey } = await generateKeyPair('ES256');
    const otherJwk = { ...(await exportJWK(otherPublicKey)), kid: 'doc-key-2', alg: 'ES256' };
    const keyed = { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } };
    const cases: Array<[label: string, initial: Record<string, unknown>, changed: Record<string, unknown>, fields: string[]]> = [
      ['post_logout_redirect_uris', {}, { post_logout_redirect_uris: ['https://attacker.example.test/bye'] }, ['post_logout_redirect_uris']],
      ['grant_types', {}, { grant_types: ['authorization_code', 'refresh_token'] }, ['grant_types']],
      ['token_endpoint_auth_method and jwks', {}, keyed, ['token_endpoint_auth_method', 'jwks']],
      ['jwks', keyed, { ...keyed, jwks: { keys: [otherJwk] } }, ['jwks']],
    ];

    for (const [index, [label, initial, changed, fields]] of cases.entries()) {
      const path = `/review-${index}.json`;
      const clientId = await documentAgent(path, `Reviewed agent ${index}`, initial);
      docs.serve(path, { body: documentOf(clientId, { ...initial, ...changed }) });
      await expireMetadata(clientId);
      assertErrorPage(await authorize(clientId), REGISTERED_PAGE, label);

      const stored = await storedClient(clientId);
      assert.equal(stored?.kind, 'registered', label);
      assert.equal(stored?.name, `Reviewed agent ${index}`, label);
      const review = (await auditEntries('client.review_required')).filter((entry) => entry.agent === clientId);
      assert.deepEqual(review.map((entry) => entry.target), [{ registration: 'metadata_document', changed_fields: fields }], label);
      const roles = await server.ctx.db.selectFrom('client_roles').select('role_id').where('client_id', '=', clientId).execute();
      assert.deepEqual(roles.map((row) => row.role_id), [world.roles.reader], label);
    }
  });

  test('name change keeps the agent', async () => {
    const clientId = await documentAgent('/renamed.json', 'Admin-named agent');
    docs.serve('/renamed.json', { body: documentOf(clientId, { client_name: 'Chosen by the document' }) });
    await expireMetadata(clientId);
    const before = docs.requestsFor('/renamed.json');

    const response = await authorize(clientId);
    assert.equal(response.status, 303, response.text);
    assert.equal(docs.requestsFor('/renamed.json'), before + 1);
    const stored = await storedClient(clientId);
    assert.equal(stored?.kind, 'agent');
    assert.equal(stored?.name, 'Admin-named agent');
    assert.ok(Number(stored?.metadata_expires_at) > nowSeconds());
    assert.equal((await auditEntries('client.review_required')).filter((entry) => entry.agent === clientId).length, 0);
  });
});
