import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, signIn } from '../browser.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { MAX_PREVIEW_BYTES } from '../../src/approvals/body-preview.ts';
import { MAX_LISTED_VALUE_CHARS } from '../../src/approvals/approval-page.tsx';
import { decideApproval } from '../../src/approvals/service.ts';
import { callGateway, createWorld, delegatedToken, PASSWORD, startUpstream, type Upstream, type World } from '../gateway/world.ts';

let server: TestServer;
let upstream: Upstream;
let browser: Browser;

before(async () => {
  server = await startTestServer();
  upstream = await startUpstream();
  browser = await launchBrowser();
});

after(async () => {
  await browser.close();
  await upstream.close();
  await server.stop();
});

/** Makes a `send` call that needs approval with the given body and returns the approval id. */
async function requestApproval(world: World, body: string | Buffer, contentType = 'application/json'): Promise<string> {
  const token = await delegatedToken(server, world);
  const response = await fetch(`${server.issuer}/gateway/${world.resourceName}/send/mail`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  const answer = (await response.json()) as { error: string; approval_id: string };
  assert.equal(answer.error, 'approval_required', `the gateway asks for approval (status ${response.status})`);
  return answer.approval_id;
}

/** Declares typed arguments on the world's `send` action, as an administrator would. */
async function declareSendArguments(world: World, declarations: Record<string, string>): Promise<void> {
  await server.ctx.db.updateTable('resource_actions').set({ arguments: JSON.stringify(declarations) }).where('resource_id', '=', world.resourceId).where('name', '=', 'send').execute();
}

/** Opens `path` in a fresh browser context and signs in on the way. */
async function signedInPage(world: World, path: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.issuer}${path}`);
  await signIn(page, world.user.username, PASSWORD);
  assert.equal(new URL(page.url()).pathname, path);
  return page;
}

/** Cookies of one client without a browser: a cookie jar keyed by name. */
type Jar = Map<string, string>;

function cookieHeader(jar: Jar): string {
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
}

function store(jar: Jar, response: Response): void {
  for (const field of response.headers.getSetCookie()) {
    const [pair = ''] = field.split(';');
    const separator = pair.indexOf('=');
    jar.set(pair.slice(0, separator), pair.slice(separator + 1));
  }
}

/** Signs in without a browser, keeping the cookies in `jar`, as a browser would on a second sign-in. */
async function signInWithFetch(world: World, jar: Jar = new Map()): Promise<Jar> {
  const login = await fetch(`${server.issuer}/login`, { headers: { cookie: cookieHeader(jar) } });
  store(jar, login);
  const loginCsrf = /name="_csrf" value="([^"]+)"/.exec(await login.text())?.[1] ?? '';
  const signedIn = await fetch(`${server.issuer}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader(jar) },
    body: new URLSearchParams({ _csrf: loginCsrf, username: world.user.username, password: PASSWORD }),
  });
  assert.equal(signedIn.status, 303, 'the sign-in succeeds');
  store(jar, signedIn);
  return jar;
}

/** Loads an approval page with the cookies of `jar` and returns its CSRF token. */
async function pageCsrfToken(jar: Jar, approvalId: string): Promise<string> {
  const page = await fetch(`${server.issuer}/approvals/${approvalId}`, { headers: { cookie: cookieHeader(jar) } });
  assert.equal(page.status, 200);
  const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1];
  assert.ok(token !== undefined, 'the approval page has a CSRF token');
  return token;
}

async function postDecision(approvalId: string, decision: 'approve' | 'deny', cookie: string, csrfToken: string): Promise<Response> {
  return fetch(`${server.issuer}/approvals/${approvalId}/${decision}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrfToken }).toString(),
  });
}

async function statusOf(approvalId: string): Promise<string> {
  const row = await server.ctx.db.selectFrom('approvals').select('status').where('id', '=', approvalId).executeTakeFirstOrThrow();
  return row.status;
}

/** Reads the member list of the page as [name, shown value, declared-argument label] rows. */
async function memberRows(page: Page): Promise<string[][]> {
  return page.locator('#body table.members tbody tr').evaluateAll((rows) =>
    rows.map((row) => [row.querySelector('.member-name code')?.textContent ?? '', row.querySelector('.member-value code')?.textContent ?? '', row.querySelector('.declared')?.textContent ?? '']),
  );
}

describe('approval page shows the whole body', () => {
  test('member after padding is listed', async () => {
    const world = await createWorld(server, upstream.url);
    await declareSendArguments(world, { to: 'String' });
    const padding = 'x'.repeat(5000);
    const recipient = `bob+${'y'.repeat(300)}@example.test`;
    const body = JSON.stringify({ note: padding, to: recipient, zz_to: 'attacker@example.test' });
    const approvalId = await requestApproval(world, body);

    const page = await signedInPage(world, `/approvals/${approvalId}`);
    assert.deepEqual(await memberRows(page), [
      ['"note"', `"${'x'.repeat(MAX_LISTED_VALUE_CHARS - 1)}…`, ''],
      ['"to"', `"${recipient}"`, ' declared argument (String)'],
      ['"zz_to"', '"attacker@example.test"', ''],
    ]);
    const shortened = page.locator('#body .member-value .shortened');
    assert.equal(await shortened.count(), 1, 'only the undeclared padding is shortened');
    assert.equal(await shortened.textContent(), `Shortened here to its first ${MAX_LISTED_VALUE_CHARS} of 5002 characters. The whole request body below shows it in full.`);
    assert.equal(await page.textContent('#body pre'), JSON.stringify(JSON.parse(body), null, 2), 'the whole body is shown');
    assert.equal(await page.locator('#body .wide-lines').count(), 1, 'the page says that the box scrolls sideways');

    await Promise.all([page.waitForURL(`${server.issuer}/approvals/${approvalId}`), page.click('#approve')]);
    assert.equal(await statusOf(approvalId), 'approved');
    await page.context().close();
  });

  test('body at the limit can be approved', async () => {
    const world = await createWorld(server, upstream.url);
    const skeleton = JSON.stringify({ note: '', to: 'carol@example.test' });
    const body = JSON.stringify({ note: 'z'.repeat(MAX_PREVIEW_BYTES - skeleton.length), to: 'carol@example.test' });
    assert.equal(Buffer.byteLength(body), MAX_PREVIEW_BYTES);
    const approvalId = await requestApproval(world, body);

    const page = await signedInPage(world, `/approvals/${approvalId}`);
    assert.equal(await page.textContent('#body pre'), JSON.stringify(JSON.parse(body), null, 2));
    assert.equal(await page.locator('#approve').count(), 1);
    await page.context().close();
  });

  test('repeated members listed as sent', async () => {
    const world = await createWorld(server, upstream.url);
    const body = `{"note":"${'x'.repeat(5000)}","to":"bob@example.test","to":"eve@example.test"}`;
    const approvalId = await requestApproval(world, body);

    const page = await signedInPage(world, `/approvals/${approvalId}`);
    const rows = await memberRows(page);
    assert.deepEqual(
      rows.map(([name, value]) => [name, value]),
      [
        ['"note"', `"${'x'.repeat(MAX_LISTED_VALUE_CHARS - 1)}…`],
        ['"to"', '"bob@example.test"'],
        ['"to"', '"eve@example.test"'],
      ],
    );
    assert.equal(await page.textContent('#body pre'), body, 'the text is shown as sent');
    assert.equal(await page.locator('#body .as-sent').count(), 1);
    assert.equal(await page.locator('#approve').count(), 1);
    await page.context().close();
  });

  test('invisible characters shown as escapes', async () => {
    const world = await createWorld(server, upstream.url);
    const body = JSON.stringify({ to: 'bob\u202E@example.test', 'ze\u200Bro': 1 });
    const approvalId = await requestApproval(world, body);

    const page = await signedInPage(world, `/approvals/${approvalId}`);
    assert.deepEqual(await memberRows(page), [
      ['"to"', '"bob\\u202e@example.test"', ''],
      ['"ze\\u200bro"', '1', ''],
    ]);
    assert.equal(await page.textContent('#body pre'), '{\n  "to": "bob\\u202e@example.test",\n  "ze\\u200bro": 1\n}');
    assert.equal(await page.locator('#body .escaped-characters').count(), 1);
    await page.context().close();
  });
});

describe('body that cannot be shown', () => {
  const large = Buffer.from(JSON.stringify({ note: 'x'.repeat(MAX_PREVIEW_BYTES), zz_to: 'attacker@example.test' }));
  const cases: { name: string; body: Buffer; contentType: string; reason: RegExp }[] = [
    { name: 'larger than the limit', body: large, contentType: 'application/json', reason: new RegExp(`^The request body is ${large.length} bytes, more than the ${MAX_PREVIEW_BYTES} bytes that this page shows in full\\.$`) },
    { name: 'not UTF-8', body: Buffer.from([0x50, 0x4b, 0x03, 0x04, 0xff, 0xfe, 0x00, 0x01]), contentType: 'application/octet-stream', reason: /^The request body is not UTF-8 text \(Content-Type: application\/octet-stream\)/ },
    { name: 'text with a direction override', body: Buffer.from('pay bob\u202E0001 USD'), contentType: 'text/plain', reason: /control characters or invisible formatting characters/ },
  ];

  for (const { name, body, contentType, reason } of cases) {
    test(`${name}: only deny, in the browser`, async () => {
      const world = await createWorld(server, upstream.url);
      const approvalId = await requestApproval(world, body, contentType);
      const path = `/approvals/${approvalId}`;

      const page = await signedInPage(world, path);
      assert.match((await page.textContent('#body .body-not-shown')) ?? '', reason);
      assert.equal(await page.locator('#body pre').count(), 0, 'no part of the body is shown as if it were all');
      assert.equal(await page.locator('#approve').count(), 0, 'no Approve button');
      assert.equal(await page.locator('form[action$="/approve"]').count(), 0, 'no approve form');
      assert.equal(await page.textContent('#approve-unavailable'), 'Approve is not offered, because the request body cannot be shown to you in full. You can only deny this request.');
      assert.equal(await page.locator('#deny').count(), 1, 'Deny is offered');

      // A form built in the page, posting the page's own CSRF token, as a script or an old tab would.
      const token = await page.locator('form[action$="/deny"] input[name="_csrf"]').getAttribute('value');
      assert.ok(token !== null);
      await Promise.all([
        page.waitForURL(`${server.issuer}${path}/approve`),
        page.evaluate(
          ({ action, csrf }) => {
            const form = document.createElement('form');
            form.method = 'post';
            form.action = action;
            const field = document.createElement('input');
            field.type = 'hidden';
            field.name = '_csrf';
            field.value = csrf;
            form.append(field);
            document.body.append(form);
            form.submit();
          },
          { action: `${path}/approve`, csrf: token },
        ),
      ]);
      assert.equal(await page.textContent('h1'), 'Approval not possible');
      assert.match((await page.textContent('p.error')) ?? '', /You can only deny this request/);
      assert.equal(await statusOf(approvalId), 'pending', 'the approve POST changed nothing');

      await page.goto(`${server.issuer}${path}`);
      await Promise.all([page.waitForURL(`${server.issuer}${path}`), page.click('#deny')]);
      assert.equal(await statusOf(approvalId), 'denied');
      await page.context().close();
    });

    test(`${name}: direct approve POST refused`, async () => {
      const world = await createWorld(server, upstream.url);
      const approvalId = await requestApproval(world, body, contentType);
      const jar = await signInWithFetch(world);
      const token = await pageCsrfToken(jar, approvalId);

      const approve = await postDecision(approvalId, 'approve', cookieHeader(jar), token);
      assert.equal(approve.status, 409);
      const page = await approve.text();
      assert.match(page, /<h1>Approval not possible<\/h1>/);
      assert.match(page, /You can only deny this request, because approving it would allow a request you cannot see in full\./);
      assert.equal(await statusOf(approvalId), 'pending');

      const service = await decideApproval(server.ctx, { id: approvalId, userId: world.user.id, decision: 'approved' });
      assert.deepEqual(service, { ok: false, reason: 'body_not_shown' }, 'the service refuses too');

      const deny = await postDecision(approvalId, 'deny', cookieHeader(jar), token);
      assert.equal(deny.status, 303, 'the same token denies');
      assert.equal(await statusOf(approvalId), 'denied');
    });
  }

  test('lost stored body: only deny', async () => {
    const world = await createWorld(server, upstream.url);
    const approvalId = await requestApproval(world, '{"to":"bob@example.test"}');
    await server.ctx.db.updateTable('approvals').set({ body_preview: null }).where('id', '=', approvalId).execute();
    const jar = await signInWithFetch(world);
    const token = await pageCsrfToken(jar, approvalId);

    const approve = await postDecision(approvalId, 'approve', cookieHeader(jar), token);
    assert.equal(approve.status, 409);
    assert.match(await approve.text(), /This server no longer has a readable copy of the request body\./);
    assert.equal(await statusOf(approvalId), 'pending');
  });

  test('older 4 KiB copy: only deny', async () => {
    const world = await createWorld(server, upstream.url);
    const body = JSON.stringify({ note: 'x'.repeat(5000), zz_to: 'attacker@example.test' });
    const approvalId = await requestApproval(world, body);
    // The form in which earlier versions stored the first 4 KiB of a larger body.
    const legacy = { bytes: Buffer.from(body).subarray(0, 4096).toString('base64'), total_bytes: Buffer.byteLength(body), content_type: 'application/json' };
    await server.ctx.db.updateTable('approvals').set({ body_preview: await server.ctx.envelope.seal(JSON.stringify(legacy), `approval:${approvalId}`) }).where('id', '=', approvalId).execute();

    const page = await signedInPage(world, `/approvals/${approvalId}`);
    assert.equal(await page.textContent('#body .body-not-shown'), `The request body is ${Buffer.byteLength(body)} bytes, more than the ${MAX_PREVIEW_BYTES} bytes that this page shows in full.`);
    assert.equal(await page.locator('#approve').count(), 0);
    await page.context().close();
  });

  test('stored body of another request: only deny', async () => {
    const world = await createWorld(server, upstream.url);
    const approvalId = await requestApproval(world, '{"to":"bob@example.test"}');
    const otherBody = Buffer.from('{"to":"eve@example.test"}');
    const other = { bytes: otherBody.toString('base64'), total_bytes: otherBody.length, content_type: 'application/json' };
    await server.ctx.db.updateTable('approvals').set({ body_preview: await server.ctx.envelope.seal(JSON.stringify(other), `approval:${approvalId}`) }).where('id', '=', approvalId).execute();

    const result = await decideApproval(server.ctx, { id: approvalId, userId: world.user.id, decision: 'approved' });
    assert.deepEqual(result, { ok: false, reason: 'body_not_shown' });
  });

  test('large bodies get separate approvals', async () => {
    // The binding still covers the whole body, also past the size that the page shows.
    const world = await createWorld(server, upstream.url);
    const token = await delegatedToken(server, world);
    const large = JSON.stringify({ note: 'x'.repeat(MAX_PREVIEW_BYTES), to: 'bob@example.test' });
    const first = await callGateway(server, world, '/send/mail', { method: 'POST', token, body: large, headers: { 'content-type': 'application/json' } });
    const second = await callGateway(server, world, '/send/mail', { method: 'POST', token, body: large.replace('bob@', 'eve@'), headers: { 'content-type': 'application/json' } });
    const firstId = ((await first.json()) as { approval_id: string }).approval_id;
    const secondId = ((await second.json()) as { approval_id: string }).approval_id;
    assert.notEqual(firstId, secondId, 'bodies that differ after the stored limit get separate approvals');
  });
});

describe('decision CSRF token bound to the session', () => {
  test('token from an earlier session refused', async () => {
    const world = await createWorld(server, upstream.url);
    const approvalId = await requestApproval(world, '{"to":"bob@example.test"}');
    const jar = await signInWithFetch(world);
    const earlierToken = await pageCsrfToken(jar, approvalId);

    // Signing in again in the same browser keeps its `_csrf` cookie and starts a new session.
    const earlierSession = jar.get('mandate_session');
    await signInWithFetch(world, jar);
    assert.notEqual(jar.get('mandate_session'), earlierSession, 'a new session started');

    for (const decision of ['approve', 'deny'] as const) {
      const response = await postDecision(approvalId, decision, cookieHeader(jar), earlierToken);
      assert.equal(response.status, 403, `${decision} with the earlier session's token`);
      assert.deepEqual(await response.json(), { error: 'invalid_request', error_description: 'The form is missing its CSRF token or the token is invalid; reload the page and try again.' });
    }
    assert.equal(await statusOf(approvalId), 'pending');

    const accepted = await postDecision(approvalId, 'approve', cookieHeader(jar), await pageCsrfToken(jar, approvalId));
    assert.equal(accepted.status, 303, 'a token of the current session is accepted');
    assert.equal(await statusOf(approvalId), 'approved');
  });

  test('token and cookie of another browser refused', async () => {
    const world = await createWorld(server, upstream.url);
    const approvalId = await requestApproval(world, '{"to":"bob@example.test"}');
    const victim = await signInWithFetch(world);
    const attacker = await signInWithFetch(world);
    const attackerToken = await pageCsrfToken(attacker, approvalId);

    // The attacker plants their own `_csrf` cookie in the victim's browser, as a sibling host can.
    const planted = new Map(victim);
    planted.set('_csrf', attacker.get('_csrf') ?? '');
    for (const decision of ['approve', 'deny'] as const) {
      const response = await postDecision(approvalId, decision, cookieHeader(planted), attackerToken);
      assert.equal(response.status, 403, `${decision} with a planted cookie and token`);
    }
    assert.equal(await statusOf(approvalId), 'pending');
  });

  test('malformed tokens refused', async () => {
    const world = await createWorld(server, upstream.url);
    const approvalId = await requestApproval(world, '{"to":"bob@example.test"}');
    const jar = await signInWithFetch(world);
    const token = await pageCsrfToken(jar, approvalId);
    const [salt = '', mac = ''] = token.split('.');
    const flipped = `${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`;

    for (const forged of ['', salt, `${salt}.`, `.${mac}`, `${salt}.${mac}.${mac}`, `${salt}.${flipped}`, `${salt}x.${mac}`]) {
      const response = await postDecision(approvalId, 'approve', cookieHeader(jar), forged);
      assert.equal(response.status, 403, `token ${JSON.stringify(forged)}`);
    }
    const repeated = await fetch(`${server.issuer}/approvals/${approvalId}/approve`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: cookieHeader(jar), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([
        ['_csrf', token],
        ['_csrf', token],
      ]).toString(),
    });
    assert.equal(repeated.status, 403, 'a repeated token field');
    assert.equal(await statusOf(approvalId), 'pending');

    const accepted = await postDecision(approvalId, 'approve', cookieHeader(jar), token);
    assert.equal(accepted.status, 303);
  });
});
