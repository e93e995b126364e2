import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, generateKeyPair } from 'jose';
import { createClient, disableClient } from '../../src/agents/clients.ts';
import { issueAccessToken } from '../../src/oauth/access-token.ts';
import { issueIdToken } from '../../src/oauth/id-token.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { breakAuditAppends } from '../broken-audit-log.ts';
import { seedWorld } from '../fixtures.ts';
import { signIn } from '../bad-input/requests.ts';
import { nowSeconds, sha256Hex } from '../../src/store/ids.ts';

const HTML = /^text\/html; charset=utf-8$/;

/**
 * The logout endpoint over plain HTTP, without a session: every request that fails validation
 * gets the HTML error page with status 400 and no Location (RP-Initiated Logout 1.0 §4).
 */
describe('logout endpoint validation (RP-Initiated Logout 1.0)', () => {
  let server: TestServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  const portalLogoutUri = 'https://portal.example.test/signed-out?from=mandate';
  const otherLogoutUri = 'https://other.example.test/bye';
  let portalId: string;
  let otherId: string;
  let idToken: string;

  before(async () => {
    server = await startTestServer();
    world = await seedWorld(server.ctx);
    portalId = (await createClient(server.ctx, { kind: 'application', name: 'Portal', redirectUris: ['https://portal.example.test/cb'], postLogoutRedirectUris: [portalLogoutUri] })).client.client_id;
    otherId = (await createClient(server.ctx, { kind: 'application', name: 'Other', redirectUris: ['https://other.example.test/cb'], postLogoutRedirectUris: [otherLogoutUri] })).client.client_id;
    idToken = await issueIdToken(server.ctx, { user: world.alice, clientId: portalId, nonce: null, authTime: nowSeconds() });
  });
  after(async () => {
    await server.stop();
  });

  async function getLogout(params: Record<string, string> | string) {
    const query = typeof params === 'string' ? params : new URLSearchParams(params).toString();
    const response = await fetch(`${server.issuer}/logout?${query}`, { redirect: 'manual' });
    return { status: response.status, location: response.headers.get('location'), type: response.headers.get('content-type') ?? '', text: await response.text() };
  }

  /** Signs an ID token for Alice and the portal with Mandate's own ID token key, with the claims changed. */
  async function ownIdToken(claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
    const key = server.ctx.keys.idToken;
    const iat = nowSeconds();
    return new SignJWT({ iss: server.issuer, sub: world.alice.id, aud: portalId, iat, exp: iat + 300, auth_time: iat, ...claims })
      .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header })
      .sign(key.privateKey);
  }

  function assertErrorPage(response: Awaited<ReturnType<typeof getLogout>>, message: string, label: string): void {
    assert.equal(response.status, 400, `${label}: status`);
    assert.match(response.type, HTML, `${label}: content type`);
    assert.equal(response.location, null, `${label}: must not redirect`);
    assert.ok(response.text.includes(message), `${label}: message ${message} in ${response.text.slice(0, 600)}`);
  }

  test('valid hint without session redirects with state', async () => {
    // §4: logout is idempotent, so a request without a session still returns to the client.
    const response = await getLogout({ id_token_hint: idToken, post_logout_redirect_uri: portalLogoutUri, state: 'abc 123' });
    assert.equal(response.status, 303);
    const location = new URL(response.location ?? '');
    assert.equal(`${location.origin}${location.pathname}`, 'https://portal.example.test/signed-out');
    // §3: state is added and the registered query component stays.
    assert.equal(location.searchParams.get('from'), 'mandate');
    assert.equal(location.searchParams.get('state'), 'abc 123');
  });

  test('client_id alone identifies the client', async () => {
    const response = await getLogout({ client_id: otherId, post_logout_redirect_uri: otherLogoutUri });
    assert.equal(response.status, 303);
    assert.equal(response.location, otherLogoutUri);
  });

  test('no redirect URI shows the signed-out page', async () => {
    const response = await getLogout({ id_token_hint: idToken });
    assert.equal(response.status, 200);
    assert.match(response.type, HTML);
    assert.match(response.text, /You are signed out/);
  });

  test('expired hint is accepted', async () => {
    // §2: an expired ID token is still a valid hint.
    const expired = await ownIdToken({ iat: nowSeconds() - 86_400, exp: nowSeconds() - 3600 });
    const response = await getLogout({ id_token_hint: expired, post_logout_redirect_uri: portalLogoutUri });
    assert.equal(response.status, 303);
    assert.equal(response.location, portalLogoutUri);
  });

  test('bad id_token_hint values are rejected', async () => {
    const otherKey = await generateKeyPair('RS256');
    const key = server.ctx.keys.idToken;
    const iat = nowSeconds();
    const forged = await new SignJWT({ iss: server.issuer, sub: world.alice.id, aud: portalId, iat, exp: iat + 300 }).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid }).sign(otherKey.privateKey);
    const [header, payload] = idToken.split('.');
    const { token: accessToken } = await issueAccessToken(server.ctx, { subject: world.alice.id, clientId: portalId, audience: world.resource.identifier, scope: ['mail.read'], lifetimeSeconds: 60 });

    const cases: Array<[label: string, hint: string]> = [
      ['signed with another key', forged],
      ['wrong issuer', await ownIdToken({ iss: 'https://attacker.example.test' })],
      ['access token', accessToken],
      ['typ at+jwt', await ownIdToken({}, { typ: 'at+jwt' })],
      ['no sub', await ownIdToken({ sub: undefined })],
      ['two audiences', await ownIdToken({ aud: [portalId, otherId] })],
      ['signature removed', `${header}.${payload}.`],
      ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`],
      ['not a JWT', 'not-a-jwt'],
    ];
    for (const [label, hint] of cases) {
      assertErrorPage(await getLogout({ id_token_hint: hint, post_logout_redirect_uri: portalLogoutUri }), 'The id_token_hint is not an ID token issued by this server.', label);
    }
  });

  test('hint never reaches the log', async () => {
    // A percent-encoded parameter name is still the hint once the query parser decodes it.
    const encodedName = await getLogout(`id%5Ftoken%5Fhint=${idToken}&post_logout_redirect_uri=${encodeURIComponent(portalLogoutUri)}`);
    assert.equal(encodedName.status, 303);
    const posted = await fetch(`${server.issuer}/logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ id_token_hint: idToken }) });
    assert.equal(posted.status, 200);
    await getLogout({ id_token_hint: `${idToken}x` });

    assert.equal(server.logs.some((line) => line.includes(idToken)), false, 'an ID token reached the log');
    // The request lines were written, with the URL and the hint's value replaced.
    assert.ok(server.logs.some((line) => line.includes('"url":"/logout?id_token_hint=%5Bredacted%5D&post_logout_redirect_uri=')));
  });

  test('client_id that differs from the hint is rejected', async () => {
    // §2: with both, client_id must be the audience of the ID token.
    const response = await getLogout({ id_token_hint: idToken, client_id: otherId, post_logout_redirect_uri: otherLogoutUri });
    assertErrorPage(response, 'The client_id does not match the audience of the id_token_hint.', 'mismatch');
  });

  test('post_logout_redirect_uri must match exactly', async () => {
    const nearMisses = [
      'https://portal.example.test/signed-out',
      'https://portal.example.test/signed-out?from=mandate&x=1',
      'https://portal.example.test/signed-out/?from=mandate',
      'https://PORTAL.example.test/signed-out?from=mandate',
      'https://portal.example.test.attacker.example/signed-out?from=mandate',
      'https://attacker.example.test/',
      otherLogoutUri,
    ];
    for (const uri of nearMisses) {
      assertErrorPage(await getLogout({ id_token_hint: idToken, post_logout_redirect_uri: uri }), `The post_logout_redirect_uri is not registered for the client ${portalId}.`, uri);
    }
  });

  test('redirect needs a known, active client', async () => {
    assertErrorPage(await getLogout({ post_logout_redirect_uri: portalLogoutUri }), 'A post_logout_redirect_uri needs an id_token_hint or a client_id that names a registered client.', 'no client');
    assertErrorPage(await getLogout({ client_id: 'app_unknown', post_logout_redirect_uri: portalLogoutUri }), 'The client_id app_unknown is not a registered client.', 'unknown client');
    // The seeded application registered no post-logout redirect URIs.
    assertErrorPage(await getLogout({ client_id: world.app.client.client_id, post_logout_redirect_uri: portalLogoutUri }), `The post_logout_redirect_uri is not registered for the client ${world.app.client.client_id}.`, 'client without URIs');

    const retired = await createClient(server.ctx, { kind: 'application', name: 'Retired', redirectUris: ['https://retired.example.test/cb'], postLogoutRedirectUris: ['https://retired.example.test/bye'] });
    await disableClient(server.ctx, retired.client.client_id);
    assertErrorPage(await getLogout({ client_id: retired.client.client_id, post_logout_redirect_uri: 'https://retired.example.test/bye' }), `The client ${retired.client.client_id} is disabled`, 'disabled client');
  });

  test('self-registered client gets no redirect', async () => {
    // RFC 9700 §4.11.2: a client that registered itself chose its own URIs, so no one reviewed them.
    const attackerUri = 'https://attacker.example.test/signed-out';
    const registered = await createClient(server.ctx, { kind: 'registered', name: 'Self-registered', redirectUris: ['https://attacker.example.test/cb'], postLogoutRedirectUris: [attackerUri], registration: { origin: 'dynamic' } });
    const clientId = registered.client.client_id;
    const message = `The client ${clientId} registered itself and an administrator has not yet made it an agent, so the browser is not sent back to it.`;
    const registeredHint = await issueIdToken(server.ctx, { user: world.alice, clientId, nonce: null, authTime: nowSeconds() });

    assertErrorPage(await getLogout({ client_id: clientId, post_logout_redirect_uri: attackerUri, state: 's1' }), message, 'client_id');
    assertErrorPage(await getLogout({ id_token_hint: registeredHint, post_logout_redirect_uri: attackerUri }), message, 'id_token_hint');

    const posted = await fetch(`${server.issuer}/logout`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: clientId, post_logout_redirect_uri: attackerUri }) });
    assert.equal(posted.status, 400);
    assert.equal(posted.headers.get('location'), null);
    assert.ok((await posted.text()).includes(message));
    assert.equal(posted.headers.get('content-security-policy')?.includes('attacker.example.test'), false);

    // Without a redirect the person may still confirm, and the form may post only to Mandate.
    const { cookie } = await aliceSession();
    const confirmation = await fetch(`${server.issuer}/logout`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: new URLSearchParams({ client_id: clientId }) });
    assert.equal(confirmation.status, 200);
    assert.match(confirmation.headers.get('content-security-policy') ?? '', /form-action 'self';/);
    const csrfToken = /name="_csrf" value="([^"]+)"/.exec(await confirmation.text())?.[1] ?? '';
    assert.notEqual(csrfToken, '');

    // A confirmation form with the redirect added is checked again and refused.
    const confirmed = await fetch(`${server.issuer}/logout/confirm`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ _csrf: csrfToken, client_id: clientId, post_logout_redirect_uri: attackerUri }),
    });
    assert.equal(confirmed.status, 400);
    assert.equal(confirmed.headers.get('location'), null);
    assert.ok((await confirmed.text()).includes(message));
  });

  test('repeated parameters are rejected', async () => {
    for (const name of ['id_token_hint', 'client_id', 'post_logout_redirect_uri', 'state', 'logout_hint', 'ui_locales']) {
      assertErrorPage(await getLogout(`${name}=a&${name}=b`), `The ${name} parameter must appear only once.`, name);
    }
  });

  test('POST with form parameters asks to confirm', async () => {
    // Without the session cookie, as from a cross-site form, the POST becomes a GET that carries
    // it. The ID token stays out of the URL.
    const form = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: portalLogoutUri, state: 's1', ui_locales: 'de en' });
    const redirected = await fetch(`${server.issuer}/logout`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    assert.equal(redirected.status, 303);
    assert.equal(redirected.headers.get('location'), `/logout?${new URLSearchParams({ client_id: portalId, post_logout_redirect_uri: portalLogoutUri, state: 's1' })}`);

    // With the session cookie and a hint from an earlier sign-in, the person confirms.
    const { cookie } = await aliceSession();
    const earlierHint = await ownIdToken({ auth_time: nowSeconds() - 3600 });
    form.set('id_token_hint', earlierHint);
    const response = await fetch(`${server.issuer}/logout`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: form });
    const text = await response.text();
    assert.equal(response.status, 200);
    assert.match(text, /Sign out of Mandate\?/);
    assert.match(text, /<strong>Portal<\/strong> asks you to sign out/);
    assert.match(text, new RegExp(`name="client_id" value="${portalId}"`));
    assert.equal(text.includes(earlierHint), false, 'the page must not echo the ID token');
    // The confirmation's redirect is allowed by the page's form-action, and nothing else is.
    assert.equal(response.headers.get('content-security-policy')?.includes("form-action 'self' https://portal.example.test;"), true);
  });

  test('POST with a JSON body is rejected', async () => {
    const response = await fetch(`${server.issuer}/logout`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id_token_hint: idToken }) });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('location'), null);
    assert.match(await response.text(), /The request body must be application\/x-www-form-urlencoded\./);
  });

  test('confirmation checks the carried parameters again', async () => {
    // A valid CSRF token from the real confirmation page, then a form whose post_logout_redirect_uri was changed.
    const { cookie, sessionId } = await aliceSession();
    const page = await fetch(`${server.issuer}/logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: `client_id=${portalId}` });
    const csrfToken = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1] ?? '';
    assert.notEqual(csrfToken, '');

    const response = await fetch(`${server.issuer}/logout/confirm`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ _csrf: csrfToken, client_id: portalId, post_logout_redirect_uri: 'https://attacker.example.test/' }),
    });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('location'), null);
    assert.match(await response.text(), /is not registered for the client/);
    assert.equal(await sessionAlive(sessionId), true);
  });
  /** Signs Alice in over HTTP and returns her cookies with an ID token from that very session. */
  async function aliceSession(): Promise<{ cookie: string; sessionId: string; sessionHint: string }> {
    const session = await signIn(server, 'alice');
    const sessionId = /mandate_session=([^;]+)/.exec(session.cookie)?.[1] ?? '';
    const row = await server.ctx.db.selectFrom('sessions').select('auth_time').where('id_hash', '=', sha256Hex(sessionId)).executeTakeFirstOrThrow();
    const sessionHint = await issueIdToken(server.ctx, { user: world.alice, clientId: portalId, nonce: null, authTime: Number(row.auth_time) });
    return { cookie: session.cookie, sessionId, sessionHint };
  }

  async function sessionAlive(sessionId: string): Promise<boolean> {
    return (await server.ctx.db.selectFrom('sessions').select('user_id').where('id_hash', '=', sha256Hex(sessionId)).executeTakeFirst()) !== undefined;
  }

  test('logout_hint naming someone else asks to confirm', async () => {
    const { cookie, sessionId, sessionHint } = await aliceSession();
    const response = await fetch(`${server.issuer}/logout?${new URLSearchParams({ id_token_hint: sessionHint, logout_hint: 'bob' })}`, { redirect: 'manual', headers: { cookie } });
    assert.equal(response.status, 200);
    assert.match(await response.text(), /Signed in as Alice Example\./);
    assert.equal(await sessionAlive(sessionId), true);
  });

  test('logout_hint naming the person signs out', async () => {
    for (const logoutHint of ['alice', world.alice.id]) {
      const { cookie, sessionId, sessionHint } = await aliceSession();
      const response = await fetch(`${server.issuer}/logout?${new URLSearchParams({ id_token_hint: sessionHint, logout_hint: logoutHint })}`, { redirect: 'manual', headers: { cookie } });
      assert.equal(response.status, 200, logoutHint);
      assert.match(await response.text(), /You are signed out/, logoutHint);
      assert.equal(await sessionAlive(sessionId), false, logoutHint);
      // The session cookie is cleared in the browser too.
      assert.match(response.headers.getSetCookie().join('\n'), /mandate_session=;/, logoutHint);
    }
  });

  test('failed audit append keeps the session', async () => {
    const { cookie, sessionId, sessionHint } = await aliceSession();
    // The audit log cannot take the entry, so the sign-out rolls back with it (fail closed).
    const restoreAuditLog = await breakAuditAppends(server.ctx.db);
    try {
      const response = await fetch(`${server.issuer}/logout?${new URLSearchParams({ id_token_hint: sessionHint })}`, { redirect: 'manual', headers: { cookie } });
      assert.equal(response.status, 500);
      assert.equal(response.headers.getSetCookie().some((field) => field.startsWith('mandate_session=')), false, 'the cookie stays');
      assert.equal((await response.json() as { error: string }).error, 'server_error');
    } finally {
      await restoreAuditLog();
    }
    assert.equal(await sessionAlive(sessionId), true);
  });
});
