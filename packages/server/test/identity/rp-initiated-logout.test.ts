import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { SignJWT, decodeJwt, generateKeyPair } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createClient } from '../../src/agents/clients.ts';
import { nowSeconds, sha256Hex } from '../../src/store/ids.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { PASSWORD, seedWorld } from '../fixtures.ts';
import { launchBrowser, signIn, startCallbackServer, type CallbackServer } from '../browser.ts';

/**
 * OpenID Connect RP-Initiated Logout 1.0 in a real browser: a relying party signs Alice in with
 * openid-client's code flow, then sends her to the end_session_endpoint with buildEndSessionUrl.
 */
describe('RP-Initiated Logout 1.0 in the browser', () => {
  let server: TestServer;
  let browser: Browser;
  let callback: CallbackServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let config: client.Configuration;
  /** The relying party's registered post_logout_redirect_uri, served by the callback server. */
  let signedOutUri: string;

  before(async () => {
    server = await startTestServer();
    callback = await startCallbackServer();
    world = await seedWorld(server.ctx, { redirectUri: callback.url });
    signedOutUri = new URL('/signed-out', callback.url).href;
    const portal = await createClient(server.ctx, { kind: 'application', name: 'Logout portal', redirectUris: [callback.url], postLogoutRedirectUris: [signedOutUri] });
    config = await client.discovery(new URL(server.issuer), portal.client.client_id, {}, client.ClientSecretBasic(portal.clientSecret ?? ''), { execute: [client.allowInsecureRequests] });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser.close();
    await callback.close();
    await server.stop();
  });

  function authorizationUrl(verifier: string, state: string): Promise<URL> {
    return client.calculatePKCECodeChallenge(verifier).then((challenge) =>
      client.buildAuthorizationUrl(config, { redirect_uri: callback.url, scope: 'openid mail.read', code_challenge: challenge, code_challenge_method: 'S256', state, resource: world.resource.identifier }),
    );
  }

  /** Signs Alice in through the code flow in one browser context, which keeps her Mandate session. */
  async function signInAsRelyingParty(context: BrowserContext): Promise<{ page: Page; idToken: string; sessionId: string }> {
    const page = await context.newPage();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    await page.goto((await authorizationUrl(verifier, state)).href);
    await signIn(page, 'alice', PASSWORD);
    await page.click('#allow');
    const tokens = await client.authorizationCodeGrant(config, await callback.next(), { pkceCodeVerifier: verifier, expectedState: state });
    assert.ok(tokens.id_token, 'the code flow returned an ID token');
    const sessionId = (await context.cookies(server.issuer)).find((cookie) => cookie.name === 'mandate_session')?.value;
    assert.ok(sessionId, 'the browser holds a Mandate session cookie');
    return { page, idToken: tokens.id_token, sessionId };
  }

  /** Opens a fresh /authorize in the same context and returns the path it lands on: /login when the session is gone. */
  async function pathOfNewAuthorization(page: Page): Promise<string> {
    await page.goto((await authorizationUrl(client.randomPKCECodeVerifier(), client.randomState())).href);
    return new URL(page.url()).pathname;
  }

  /** Checks whether the database still contains the session with this id (the mandate_session cookie's value). */
  async function sessionAlive(sessionId: string): Promise<boolean> {
    const row = await server.ctx.db.selectFrom('sessions').select('user_id').where('id_hash', '=', sha256Hex(sessionId)).executeTakeFirst();
    return row !== undefined;
  }

  async function sessionEndedEvents(): Promise<Array<Record<string, unknown>>> {
    const rows = await server.ctx.db.selectFrom('audit_log').select('entry').orderBy('seq').execute();
    return rows.map((row) => JSON.parse(row.entry) as Record<string, unknown>).filter((entry) => entry.event === 'session.ended');
  }

  test('discovery names the end_session_endpoint', () => {
    // RP-Initiated Logout 1.0 §2.1
    assert.equal(config.serverMetadata().end_session_endpoint, `${server.issuer}/logout`);
  });

  test('hint from the session signs out and redirects', async () => {
    const context = await browser.newContext();
    try {
      const { page, idToken, sessionId } = await signInAsRelyingParty(context);
      assert.equal(await sessionAlive(sessionId), true);
      const eventsBefore = (await sessionEndedEvents()).length;

      // §2 and §3: a valid id_token_hint, a registered post_logout_redirect_uri and state.
      const state = client.randomState();
      const logoutUrl = client.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: signedOutUri, state });
      await page.goto(logoutUrl.href);

      const landed = new URL(page.url());
      assert.equal(`${landed.origin}${landed.pathname}`, signedOutUri);
      assert.equal(landed.searchParams.get('state'), state);
      assert.equal(await sessionAlive(sessionId), false);
      assert.equal(await pathOfNewAuthorization(page), '/login');

      const events = await sessionEndedEvents();
      assert.equal(events.length, eventsBefore + 1);
      const event = events.at(-1);
      assert.equal(event?.user, world.alice.id);
      assert.equal(event?.agent, config.clientMetadata().client_id);
      assert.deepEqual(event?.reason, { initiated_by: 'client', id_token_hint: true, confirmed: false });
      assert.deepEqual(event?.outcome, { result: 'signed_out', redirected: true });

      // The request log line of the GET carries the URL, with the hint's value replaced.
      assert.equal(server.logs.some((line) => line.includes(idToken)), false, 'the ID token reached the log');
      assert.ok(server.logs.some((line) => line.includes('id_token_hint=%5Bredacted%5D')));
    } finally {
      await context.close();
    }
  });

  test('without a hint the person confirms first', async () => {
    const context = await browser.newContext();
    try {
      const { page, sessionId } = await signInAsRelyingParty(context);
      const state = client.randomState();
      // buildEndSessionUrl adds client_id, which identifies the client whose URI is checked.
      await page.goto(client.buildEndSessionUrl(config, { post_logout_redirect_uri: signedOutUri, state }).href);

      assert.equal(new URL(page.url()).pathname, '/logout');
      assert.equal(await page.locator('#sign-out').count(), 1);
      assert.match(await page.locator('main').innerText(), /Logout portal asks you to sign out/);
      assert.equal(await sessionAlive(sessionId), true, 'showing the page signed nobody out');

      await Promise.all([page.waitForURL((url) => url.href.startsWith(signedOutUri)), page.click('#sign-out')]);
      assert.equal(new URL(page.url()).searchParams.get('state'), state);
      assert.equal(await sessionAlive(sessionId), false);
      assert.deepEqual((await sessionEndedEvents()).at(-1)?.reason, { initiated_by: 'client', id_token_hint: false, confirmed: true });
      assert.equal(await pathOfNewAuthorization(page), '/login');
    } finally {
      await context.close();
    }
  });

  test('no parameters confirm, then show signed out', async () => {
    const context = await browser.newContext();
    try {
      const { page, sessionId } = await signInAsRelyingParty(context);
      await page.goto(`${server.issuer}/logout`);
      assert.equal(await sessionAlive(sessionId), true);

      await Promise.all([page.waitForURL(`${server.issuer}/logout/confirm`), page.click('#sign-out')]);
      assert.equal(await page.locator('#signed-out').innerText(), 'You are signed out');
      assert.equal(await sessionAlive(sessionId), false);
      assert.deepEqual((await sessionEndedEvents()).at(-1)?.reason, { initiated_by: 'person', id_token_hint: false, confirmed: true });
    } finally {
      await context.close();
    }
  });

  test('unregistered post_logout_redirect_uri shows an error', async () => {
    const context = await browser.newContext();
    try {
      const { page, idToken, sessionId } = await signInAsRelyingParty(context);
      // The callback server would serve this URI, so a redirect would be visible in page.url().
      const unregistered = new URL('/elsewhere', callback.url).href;
      const response = await page.goto(client.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: unregistered, state: 'x' }).href);

      // §3 and §4: no redirect to a URI the client did not register, and nothing signed out.
      assert.equal(response?.status(), 400);
      assert.equal(new URL(page.url()).origin, server.issuer);
      assert.equal(await page.locator('#logout-error').innerText(), `The post_logout_redirect_uri is not registered for the client ${config.clientMetadata().client_id}.`);
      assert.equal(await sessionAlive(sessionId), true);
      assert.equal(await pathOfNewAuthorization(page), '/authorize', 'the person is still signed in and sees the consent page');
    } finally {
      await context.close();
    }
  });

  test('forged id_token_hint is rejected', async () => {
    const context = await browser.newContext();
    try {
      const { page, idToken, sessionId } = await signInAsRelyingParty(context);
      // The same claims and key id, signed with a key that is not Mandate's.
      const { privateKey } = await generateKeyPair('RS256');
      const kid = String(JSON.parse(Buffer.from(idToken.split('.')[0] ?? '', 'base64url').toString()).kid);
      const forged = await new SignJWT(decodeJwt(idToken)).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid }).sign(privateKey);

      const response = await page.goto(client.buildEndSessionUrl(config, { id_token_hint: forged, post_logout_redirect_uri: signedOutUri }).href);
      assert.equal(response?.status(), 400);
      assert.equal(new URL(page.url()).origin, server.issuer);
      assert.equal(await page.locator('#logout-error').innerText(), 'The id_token_hint is not an ID token issued by this server.');
      assert.equal(await sessionAlive(sessionId), true);
    } finally {
      await context.close();
    }
  });

  test('hint from an earlier session asks to confirm', async () => {
    const context = await browser.newContext();
    try {
      const { page, idToken, sessionId } = await signInAsRelyingParty(context);
      // The session now looks as if it began at another sign-in than the one the ID token came from.
      await server.ctx.db.updateTable('sessions').set({ auth_time: nowSeconds() - 3600 }).where('user_id', '=', world.alice.id).execute();

      await page.goto(client.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: signedOutUri }).href);
      assert.equal(new URL(page.url()).pathname, '/logout');
      assert.equal(await page.locator('#sign-out').count(), 1);
      assert.equal(await sessionAlive(sessionId), true);
      // The confirmation form carries the client, never the ID token itself.
      assert.equal((await page.content()).includes(idToken), false);
    } finally {
      await context.close();
    }
  });

  test('expired hint from the session still signs out', async () => {
    const context = await browser.newContext();
    try {
      const { page, idToken, sessionId } = await signInAsRelyingParty(context);
      // §2: the OP accepts an expired ID token as a hint. Mandate's own key signs a copy that expired an hour ago.
      const claims = decodeJwt(idToken);
      const key = server.ctx.keys.idToken;
      const expired = await new SignJWT({ ...claims, iat: nowSeconds() - 7200, exp: nowSeconds() - 3600 }).setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid }).sign(key.privateKey);

      await page.goto(client.buildEndSessionUrl(config, { id_token_hint: expired, post_logout_redirect_uri: signedOutUri }).href);
      assert.equal(page.url(), signedOutUri);
      assert.equal(await sessionAlive(sessionId), false);
    } finally {
      await context.close();
    }
  });

  test('cross-site form post asks to confirm', async () => {
    const context = await browser.newContext();
    try {
      const { page, idToken, sessionId } = await signInAsRelyingParty(context);
      // §2: the client may POST the parameters. A page with an opaque origin posts them, so the
      // browser leaves out the SameSite=Lax session cookie. Mandate redirects the POST to a GET,
      // which carries the cookie, and shows the session's confirmation form.
      const rp = await context.newPage();
      await rp.setContent(
        `<form method="post" action="${server.issuer}/logout">` +
          `<input type="hidden" name="id_token_hint" value="${idToken}">` +
          `<input type="hidden" name="post_logout_redirect_uri" value="${signedOutUri}">` +
          '<input type="hidden" name="state" value="posted-state">' +
          '<button id="post">Sign out</button></form>',
      );
      await Promise.all([rp.waitForURL((url) => url.pathname === '/logout'), rp.click('#post')]);
      assert.equal(new URL(rp.url()).searchParams.has('id_token_hint'), false, 'the ID token is not put into the URL');
      assert.equal(await rp.locator('#sign-out').count(), 1);
      assert.match(await rp.locator('main').innerText(), /Signed in as Alice/);
      assert.equal(await sessionAlive(sessionId), true);

      await Promise.all([rp.waitForURL((url) => url.href.startsWith(signedOutUri)), rp.click('#sign-out')]);
      assert.equal(new URL(rp.url()).searchParams.get('state'), 'posted-state');
      assert.equal(await sessionAlive(sessionId), false);
      assert.equal(await pathOfNewAuthorization(page), '/login');
    } finally {
      await context.close();
    }
  });
});
