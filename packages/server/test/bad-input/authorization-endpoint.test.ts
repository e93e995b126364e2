import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { FORM, HTML_TYPE, assertNoUnexpectedErrors, assertResponse, send, signIn, snapshot, type Expected, type PageSession } from './requests.ts';

const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

interface Case extends Expected {
  name: string;
  /** The query string, or a function of the valid parameters. */
  query: string;
}

describe('authorization endpoint rejects hostile requests', () => {
  let server: TestServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let session: PageSession;

  before(async () => {
    server = await startTestServer();
    world = await seedWorld(server.ctx);
    session = await signIn(server, 'alice');
  });
  after(async () => {
    assertNoUnexpectedErrors(server);
    await server.stop();
  });

  /** A valid authorization request with some parameters replaced (undefined removes one) or repeated. */
  function query(changes: Record<string, string | undefined> = {}, extra: Array<[string, string]> = []): string {
    const params: Record<string, string | undefined> = {
      response_type: 'code',
      client_id: world.agent.client.client_id,
      redirect_uri: world.redirectUri,
      scope: 'mail.read',
      state: 'st',
      code_challenge: CHALLENGE,
      code_challenge_method: 'S256',
      resource: world.resource.identifier,
      ...changes,
    };
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) if (value !== undefined) search.append(name, value);
    for (const [name, value] of extra) search.append(name, value);
    return search.toString();
  }

  /** RFC 6749 §4.1.2.1: an error sent back to the verified redirect URI, with RFC 9207 `iss`. */
  const redirected = (error: string): Expected => ({ status: 303, location: new RegExp(`^http://127\\.0\\.0\\.1:9/callback\\?error=${error}&.*iss=`) });
  // RFC 9700 §4.11.2: without a verified redirect URI the error is shown on Mandate's page.
  const page: Expected = { status: 400, contentType: HTML_TYPE };

  test('GET /authorize cases', async () => {
    const cases: Case[] = [
      { name: 'no parameters', query: '', ...page },
      { name: 'client_id missing', query: query({ client_id: undefined }), ...page },
      { name: 'client_id unknown', query: query({ client_id: 'agt_unknown' }), ...page },
      { name: 'client_id repeated', query: query({}, [['client_id', world.agent.client.client_id]]), ...page },
      { name: 'client_id bracket syntax', query: `client_id[a]=1&redirect_uri=${encodeURIComponent(world.redirectUri)}`, ...page },
      { name: 'client_id 10 KB long', query: query({ client_id: 'a'.repeat(10_000) }), ...page },
      { name: 'client_id bad percent-encoding', query: `client_id=%zz&redirect_uri=${encodeURIComponent(world.redirectUri)}`, ...page },
      { name: 'client_id with NUL', query: query({ client_id: 'agt\u0000' }), status: 400, error: 'invalid_request' },
      { name: 'admin client_id', query: query({ client_id: 'adm_unknown' }), ...page },
      { name: 'redirect_uri missing', query: query({ redirect_uri: undefined }), ...page },
      { name: 'redirect_uri unregistered', query: query({ redirect_uri: 'https://attacker.example/cb' }), ...page },
      { name: 'redirect_uri with extra query', query: query({ redirect_uri: `${world.redirectUri}?x=1` }), ...page },
      { name: 'redirect_uri repeated', query: query({}, [['redirect_uri', 'https://attacker.example/cb']]), ...page },
      { name: 'redirect_uri CRLF', query: query({ redirect_uri: `${world.redirectUri}\r\nLocation: https://attacker.example` }), ...page },
      { name: 'response_type missing', query: query({ response_type: undefined }), ...redirected('unsupported_response_type') },
      { name: 'response_type token', query: query({ response_type: 'token' }), ...redirected('unsupported_response_type') },
      { name: 'response_type repeated', query: query({}, [['response_type', 'code']]), ...redirected('invalid_request') },
      { name: 'response_mode fragment', query: query({ response_mode: 'fragment' }), ...redirected('invalid_request') },
      { name: 'code_challenge missing', query: query({ code_challenge: undefined }), ...redirected('invalid_request') },
      { name: 'code_challenge_method plain', query: query({ code_challenge_method: 'plain' }), ...redirected('invalid_request') },
      { name: 'code_challenge_method missing', query: query({ code_challenge_method: undefined }), ...redirected('invalid_request') },
      { name: 'code_challenge too short', query: query({ code_challenge: 'abc' }), ...redirected('invalid_request') },
      { name: 'code_challenge 4 KB long', query: query({ code_challenge: 'a'.repeat(4000) }), ...redirected('invalid_request') },
      { name: 'state repeated', query: query({}, [['state', 'other']]), ...redirected('invalid_request') },
      { name: 'scope with quote', query: query({ scope: 'mail.read "x"' }), ...redirected('invalid_scope') },
      { name: 'scope repeated', query: query({}, [['scope', 'mail.send']]), ...redirected('invalid_request') },
      { name: 'resource missing', query: query({ resource: undefined }), ...redirected('invalid_target') },
      { name: 'resource repeated', query: query({}, [['resource', 'https://other.example/api']]), ...redirected('invalid_target') },
      { name: 'resource relative', query: query({ resource: '/mail' }), ...redirected('invalid_target') },
      { name: 'resource unknown', query: query({ resource: 'https://unknown.example/api' }), ...redirected('invalid_target') },
      { name: 'resource with NUL', query: query({ resource: `${world.resource.identifier}\u0000` }), status: 400, error: 'invalid_request' },
      { name: 'state with NUL', query: query({ state: 'a\u0000b' }), status: 400, error: 'invalid_request' },
    ];

    for (const entry of cases) {
      const response = await send(server, 'GET', `/authorize?${entry.query}`, { cookie: session.cookie });
      assertResponse(response, entry, entry.name);
      if (entry.status === 400) assert.equal(response.headers.location, undefined, `${entry.name}: no redirect`);
    }
  });

  test('hostile state is encoded in the redirect', async () => {
    const state = '"><script>x</script>\r\nSet-Cookie: a=b';
    const response = await send(server, 'GET', `/authorize?${query({ state, response_type: 'token' })}`, { cookie: session.cookie });
    assertResponse(response, redirected('unsupported_response_type'), 'hostile state');
    assert.equal(new URL(response.headers.location ?? '').searchParams.get('state'), state);
    assert.equal(response.headers['set-cookie'], undefined);
  });

  test('signed out, hostile values go to sign-in encoded', async () => {
    const response = await send(server, 'GET', `/authorize?${query({ state: `\r\nSet-Cookie: a=b ${'s'.repeat(2000)}` })}`);
    assertResponse(response, { status: 303, location: /^\/login\?return_to=%2Fauthorize%3F/ }, 'signed out');
    assert.equal(response.headers['set-cookie'], undefined);
  });

  test('wrong methods', async () => {
    assertResponse(await send(server, 'POST', '/authorize', { 'content-type': FORM }, query()), { status: 404, error: 'invalid_request' }, 'POST /authorize');
    assertResponse(await send(server, 'GET', '/authorize/consent'), { status: 404, error: 'invalid_request' }, 'GET /authorize/consent');
    assertResponse(await send(server, 'DELETE', '/authorize'), { status: 404, error: 'invalid_request' }, 'DELETE /authorize');
  });

  test('POST /authorize/consent cases write nothing', async () => {
    const tables = ['delegations', 'authorization_codes', 'refresh_tokens'] as const;
    // The consent form takes only the token of its page for the signed-in session.
    const consentPage = await send(server, 'GET', `/authorize?${query()}`, { cookie: session.cookie });
    const consentCsrf = /name="_csrf" value="([^"]+)"/.exec(consentPage.text)?.[1] ?? '';
    assert.notEqual(consentCsrf, '', 'the consent page has a CSRF token');
    const before = await snapshot(server.ctx, [...tables]);
    const csrfOnly = session.cookie.split('; ').filter((cookie) => cookie.startsWith('_csrf=')).join('; ');
    const consent = (changes: Record<string, string | undefined>, extra: Array<[string, string]> = []) => `_csrf=${encodeURIComponent(consentCsrf)}&${query(changes, extra)}`;

    const cases: Array<Expected & { name: string; cookie?: string; mediaType?: string; body: string }> = [
      { name: 'CSRF token missing', body: query({ decision: 'allow' }), status: 403, error: 'invalid_request' },
      { name: 'CSRF token wrong', body: `_csrf=${encodeURIComponent(`${consentCsrf}x`)}&${query({ decision: 'allow' })}`, status: 403, error: 'invalid_request' },
      { name: 'CSRF token repeated', body: `_csrf=${encodeURIComponent(consentCsrf)}&${consent({ decision: 'allow' })}`, status: 403, error: 'invalid_request' },
      { name: 'CSRF token of the sign-in page', body: `_csrf=${encodeURIComponent(session.csrf)}&${query({ decision: 'allow' })}`, status: 403, error: 'invalid_request' },
      { name: 'JSON with a CSRF token', mediaType: 'application/json', body: JSON.stringify({ _csrf: session.csrf, decision: 'allow', client_id: world.agent.client.client_id }), status: 400, error: 'invalid_request' },
      { name: 'form over 64 KiB', body: `${consent({ decision: 'allow' })}&pad=${'x'.repeat(70_000)}`, status: 413, error: 'invalid_request' },
      { name: 'client_id missing', body: consent({ client_id: undefined, decision: 'allow' }), ...page },
      { name: 'redirect_uri unregistered', body: consent({ redirect_uri: 'https://attacker.example/cb', decision: 'allow' }), ...page },
      { name: 'decision repeated', body: consent({ decision: 'allow' }, [['decision', 'allow']]), ...redirected('invalid_request') },
      { name: 'decision deny', body: consent({ decision: 'deny' }), ...redirected('access_denied') },
      { name: 'decision missing', body: consent({}), ...redirected('access_denied') },
      { name: 'code_challenge_method plain', body: consent({ code_challenge_method: 'plain', decision: 'allow' }), ...redirected('invalid_request') },
      { name: 'scope unknown', body: consent({ scope: 'mail.delete', decision: 'allow' }), ...redirected('invalid_scope') },
      { name: 'nonce with NUL', body: consent({ nonce: 'n\u0000', decision: 'allow' }), status: 400, error: 'invalid_request' },
      { name: 'signed out', cookie: csrfOnly, body: consent({ decision: 'allow' }), ...redirected('login_required') },
    ];

    for (const entry of cases) {
      const response = await send(server, 'POST', '/authorize/consent', { 'content-type': entry.mediaType ?? FORM, cookie: entry.cookie ?? session.cookie }, entry.body);
      assertResponse(response, entry, entry.name);
    }

    assert.deepEqual(await snapshot(server.ctx, [...tables]), before);
  });
});
