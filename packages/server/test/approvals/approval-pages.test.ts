import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, signIn } from '../browser.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { decideApproval } from '../../src/approvals/service.ts';
import { callGateway, createWorld, delegatedToken, PASSWORD, startUpstream, type Upstream, type World } from '../gateway/world.ts';

/** Shorter than the default, so that the test can tell the setting from a built-in limit. */
const MAX_AUTH_AGE_SECONDS = 60;

let server: TestServer;
let upstream: Upstream;
let browser: Browser;

before(async () => {
  server = await startTestServer({ approvalMaxAuthAgeSeconds: MAX_AUTH_AGE_SECONDS });
  upstream = await startUpstream();
  browser = await launchBrowser();
});

after(async () => {
  await browser.close();
  await upstream.close();
  await server.stop();
});

/** Makes a call that needs approval and returns the approval id. */
async function requestApproval(world: World, token: string, path: string, body: string): Promise<string> {
  const response = await callGateway(server, world, path, { method: 'POST', token, body, headers: { 'content-type': 'application/json' } });
  assert.equal(response.status, 403);
  return ((await response.json()) as { approval_id: string }).approval_id;
}

/** Opens `path` in a fresh browser context, signs in where the server sends the browser, and returns on `path`. */
async function signedInPage(world: World, path: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.issuer}${path}`);
  assert.equal(new URL(page.url()).pathname, '/login');
  await signIn(page, world.user.username, PASSWORD);
  assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, path);
  return page;
}

/** Signs in without a browser and returns the session cookies and the CSRF token of one approval page. */
async function fetchSession(world: World, approvalId: string): Promise<{ cookie: string; csrf: string }> {
  const login = await fetch(`${server.issuer}/login`);
  const csrfCookie = login.headers.getSetCookie().map((field) => field.split(';')[0]).join('; ');
  const loginCsrf = /name="_csrf" value="([^"]+)"/.exec(await login.text())?.[1] ?? '';
  const signedIn = await fetch(`${server.issuer}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie },
    body: new URLSearchParams({ _csrf: loginCsrf, username: world.user.username, password: PASSWORD }),
  });
  assert.equal(signedIn.status, 303);
  const cookie = `${csrfCookie}; ${signedIn.headers.getSetCookie().map((field) => field.split(';')[0]).join('; ')}`;

  const page = await fetch(`${server.issuer}/approvals/${approvalId}`, { headers: { cookie } });
  assert.equal(page.status, 200);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1];
  assert.ok(csrf !== undefined, 'the approval page has a CSRF token');
  return { cookie, csrf };
}

async function statusOf(approvalId: string): Promise<string> {
  const row = await server.ctx.db.selectFrom('approvals').select('status').where('id', '=', approvalId).executeTakeFirstOrThrow();
  return row.status;
}

describe('approvals inbox', () => {
  test('inbox lists own pending approvals newest first', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const older = await requestApproval(world, token, '/send/mail?to=bob', '{"subject":"Quarterly numbers","to":"bob@example.test"}');
    const newer = await requestApproval(world, token, '/send/mail?to=carol', '{"to":"carol@example.test","subject":"Board minutes"}');
    await server.ctx.db.updateTable('approvals').set({ created_at: Math.floor(Date.now() / 1000) - 30 }).where('id', '=', older).execute();

    const denied = await requestApproval(world, token, '/send/denied', '{"subject":"denied"}');
    await decideApproval(server.ctx, { id: denied, userId: world.user.id, decision: 'denied' });
    const expired = await requestApproval(world, token, '/send/expired', '{"subject":"expired"}');
    await server.ctx.db.updateTable('approvals').set({ expires_at: Math.floor(Date.now() / 1000) - 1 }).where('id', '=', expired).execute();
    const stranger = await createWorld(server, upstream.url);
    const strangerApproval = await requestApproval(stranger, await delegatedToken(server, stranger), '/send/mail', '{"subject":"not yours"}');

    const page = await signedInPage(world, '/approvals');
    const ids = await page.locator('#approvals li.approval').evaluateAll((items) => items.map((item) => item.id));
    assert.deepEqual(ids, [`approval-${newer}`, `approval-${older}`], `listed: ${ids.join(', ')}; not ${denied}, ${expired} or ${strangerApproval}`);

    const item = page.locator(`#approval-${newer}`);
    assert.equal(await item.locator('.agent').textContent(), `Filing Agent ${world.resourceName.slice('files-'.length)}`);
    assert.equal(await item.locator('.action').textContent(), 'send');
    assert.equal(await item.locator('.resource').textContent(), `Files ${world.resourceName.slice('files-'.length)}`);
    assert.equal(await item.locator('.request').textContent(), 'POST /send/mail?to=carol');
    assert.equal(await item.locator('.arguments pre').textContent(), '{\n  "to": "carol@example.test",\n  "subject": "Board minutes"\n}');
    assert.equal(await item.locator('a').getAttribute('href'), `/approvals/${newer}`);

    await Promise.all([page.waitForURL(`${server.issuer}/approvals/${newer}`), item.locator('a').click()]);
    assert.equal(await page.textContent('#person'), world.user.display_name);
    assert.match((await page.textContent('#agent')) ?? '', /^Filing Agent /);
    assert.match((await page.textContent('#action')) ?? '', /^send Send a message$/);
    assert.match((await page.textContent('#resource')) ?? '', new RegExp(`Files .*${world.identifier}`));
    assert.equal(await page.textContent('#body pre'), '{\n  "to": "carol@example.test",\n  "subject": "Board minutes"\n}');
    await page.context().close();
  });

  test('inbox says when nothing waits', async () => {
    const world = await createWorld(server, upstream.url);
    const page = await signedInPage(world, '/approvals');
    assert.equal(await page.textContent('#empty'), 'No requests are waiting for your approval.');
    assert.equal(await page.locator('#approvals').count(), 0);
    await page.context().close();
  });

  test('duplicate member shown as sent', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const body = '{"to":"bob@example.test","to":"eve@example.test"}';
    const approvalId = await requestApproval(world, token, '/send/mail', body);

    const page = await signedInPage(world, `/approvals/${approvalId}`);
    assert.equal(await page.textContent('#body pre'), body, 'a parser-dependent body is shown as its text, not as one reading of it');
    await page.context().close();
  });
});

describe('approval page protections', () => {
  test('pages forbid framing', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const approvalId = await requestApproval(world, token, '/send/mail', '{"subject":"frame me"}');
    const { cookie } = await fetchSession(world, approvalId);

    for (const path of ['/approvals', `/approvals/${approvalId}`, '/approvals/apr_doesnotexist']) {
      for (const headers of [{ cookie }, {}] as Record<string, string>[]) {
        const response = await fetch(`${server.issuer}${path}`, { headers, redirect: 'manual' });
        const label = `${path} ${headers.cookie === undefined ? 'signed out' : 'signed in'} (${response.status})`;
        // CSP Level 3 frame-ancestors, and X-Frame-Options (RFC 7034) for browsers without it.
        assert.match(response.headers.get('content-security-policy') ?? '', /(^|;)\s*frame-ancestors 'none'(;|$)/, label);
        assert.equal(response.headers.get('x-frame-options'), 'DENY', label);
      }
    }
  });

  test('framed approval page does not render', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const approvalId = await requestApproval(world, token, '/send/mail', '{"subject":"clickjack"}');
    const page = await signedInPage(world, `/approvals/${approvalId}`);
    assert.equal(await page.locator('#approve').count(), 1, 'the page renders when opened directly');

    // Another origin on loopback: same site, so the session cookie would go along with the frame.
    const attacker: Server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><iframe id="target" src="${server.issuer}/approvals/${approvalId}"></iframe>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    try {
      const blocked = page.waitForEvent('console', { predicate: (message) => /frame-ancestors|X-Frame-Options/i.test(message.text()), timeout: 5000 }).catch(() => undefined);
      await page.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`);
      await page.waitForLoadState('load');
      const report = await blocked;
      assert.match(report?.text() ?? '', /frame-ancestors 'none'|X-Frame-Options/, 'the browser reports why it blocked the frame');
      const frame = page.frames().find((candidate) => candidate !== page.mainFrame());
      assert.ok(frame !== undefined);
      assert.equal(await frame.locator('#approve').count(), 0, 'the approve button is not rendered inside the frame');
    } finally {
      attacker.closeAllConnections();
      await new Promise<void>((resolve) => attacker.close(() => resolve()));
      await page.context().close();
    }
    assert.equal(await statusOf(approvalId), 'pending');
  });

  test('decisions need the page CSRF token', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const approvalId = await requestApproval(world, token, '/send/mail', '{"subject":"csrf"}');
    const session = await fetchSession(world, approvalId);
    const other = await fetchSession(world, approvalId);

    const post = (decision: string, cookie: string, body: string) =>
      fetch(`${server.issuer}/approvals/${approvalId}/${decision}`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body });

    for (const decision of ['approve', 'deny']) {
      const missing = await post(decision, session.cookie, '');
      assert.equal(missing.status, 403, `${decision} without a token`);
      assert.deepEqual(await missing.json(), { error: 'invalid_request', error_description: 'The form is missing its CSRF token or the token is invalid; reload the page and try again.' });

      const forged = await post(decision, session.cookie, new URLSearchParams({ _csrf: 'forged' }).toString());
      assert.equal(forged.status, 403, `${decision} with a forged token`);

      const foreign = await post(decision, session.cookie, new URLSearchParams({ _csrf: other.csrf }).toString());
      assert.equal(foreign.status, 403, `${decision} with another browser's token`);
      assert.equal(await statusOf(approvalId), 'pending');
    }

    const accepted = await post('approve', session.cookie, new URLSearchParams({ _csrf: session.csrf }).toString());
    assert.equal(accepted.status, 303, 'the same form with its token is accepted');
    assert.equal(await statusOf(approvalId), 'approved');
  });

  test('old sign-in signs in again and returns', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const approvalId = await requestApproval(world, token, '/send/mail', '{"subject":"stale session"}');
    const path = `/approvals/${approvalId}`;
    const page = await signedInPage(world, path);

    // Twice the configured limit, and far below the 600-second default.
    await server.ctx.db.updateTable('sessions').set({ auth_time: Math.floor(Date.now() / 1000) - 2 * MAX_AUTH_AGE_SECONDS }).where('user_id', '=', world.user.id).execute();
    await page.reload();
    assert.equal(await page.textContent('#fresh-sign-in'), 'Approving asks for your password again, because you signed in more than 1 minute ago.');

    await Promise.all([page.waitForURL(/\/login\?return_to=/), page.click('#approve')]);
    assert.equal(new URL(page.url()).searchParams.get('return_to'), path);
    assert.equal(await statusOf(approvalId), 'pending', 'the old session did not approve');

    await signIn(page, world.user.username, PASSWORD);
    assert.equal(new URL(page.url()).pathname, path, 'the sign-in returns to the approval page');
    assert.equal(await page.locator('#fresh-sign-in').count(), 0);
    await Promise.all([page.waitForURL(`${server.issuer}${path}`), page.click('#approve')]);
    assert.match((await page.textContent('#status')) ?? '', /approved/);
    assert.equal(await statusOf(approvalId), 'approved');
    await page.context().close();
  });

  test('recent sign-in approves at once', async () => {
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const approvalId = await requestApproval(world, token, '/send/mail', '{"subject":"fresh session"}');
    const path = `/approvals/${approvalId}`;
    const page = await signedInPage(world, path);

    await server.ctx.db.updateTable('sessions').set({ auth_time: Math.floor(Date.now() / 1000) - (MAX_AUTH_AGE_SECONDS - 20) }).where('user_id', '=', world.user.id).execute();
    await page.reload();
    await Promise.all([page.waitForURL(`${server.issuer}${path}`), page.click('#approve')]);
    assert.equal(await statusOf(approvalId), 'approved');
    await page.context().close();
  });
});
