import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, signIn } from '../browser.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { createWorld, PASSWORD, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { backchannelRequest } from './ciba-world.ts';

/*
 * The CIBA approval page in Chromium must say which HTTP requests approving allows: the bound
 * request when the detail has `method` and `path`, and otherwise plainly that any path under the
 * action's prefix and any query pass.
 */

let server: TestServer;
let upstream: Upstream;
let browser: Browser;
let world: World;

before(async () => {
  server = await startTestServer();
  upstream = await startUpstream();
  browser = await launchBrowser();
  world = await createWorld(server, upstream.url);
});

after(async () => {
  await browser.close();
  await upstream.close();
  await server.stop();
});

/** Sends a backchannel request for one mandate_action detail with this binding message. */
async function ask(members: Record<string, unknown>, bindingMessage: string): Promise<void> {
  const response = await backchannelRequest(server, world, {
    scope: 'openid',
    login_hint: world.user.username,
    binding_message: bindingMessage,
    authorization_details: JSON.stringify([{ type: 'mandate_action', resource: world.identifier, ...members }]),
  });
  assert.equal(response.status, 200, JSON.stringify(response.body));
}

/** Signs in at the inbox, finds the request by its binding message, checks the entry's request text, and opens its page. */
async function openFromInbox(bindingMessage: string, expected: RegExp): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.issuer}/approvals`);
  await signIn(page, world.user.username, PASSWORD);
  assert.equal(new URL(page.url()).pathname, '/approvals');

  const item = page.locator('li.approval.backchannel', { hasText: bindingMessage });
  assert.equal(await item.count(), 1, 'the inbox lists the request');
  assert.match((await item.locator('.approved-request').textContent()) ?? '', expected, 'the inbox entry states the allowed requests');

  await Promise.all([page.waitForURL(/\/approvals\/ciba\/cib_/), item.locator('a').click()]);
  return page;
}

test('unbound detail shows any path', async () => {
  await ask({ action: 'purge' }, 'Unbound U-1');
  const expected = /^Any path and any query: the agent may call DELETE on \/items\/archive or any path below it, with any query\.$/;
  const page = await openFromInbox('Unbound U-1', expected);

  const cell = page.locator('#approved-request');
  assert.match((await cell.textContent()) ?? '', expected);
  assert.equal(await cell.locator('code.path-prefix').textContent(), '/items/archive');
  assert.equal(await cell.locator('.notice').count(), 1, 'the open path is shown as a notice');
  assert.equal(await page.locator('#approve').count(), 1, 'the person can still approve');
  assert.match((await page.textContent('#forwarded-headers')) ?? '', /passes on only Content-Type, Accept and Accept-Language/);
});

test('unbound detail of any method', async () => {
  await ask({ action: 'echo' }, 'Unbound U-2');
  const page = await openFromInbox('Unbound U-2', /any method on \/echo or any path below it, with any query/);
  assert.match((await page.textContent('#approved-request')) ?? '', /^Any path and any query: the agent may call any method on \/echo/);
});

test('bound detail shows the request', async () => {
  await ask({ action: 'purge', method: 'DELETE', path: '/items/archive/4?force=true' }, 'Bound B-1');
  const expected = /^Only the request DELETE \/items\/archive\/4\?force=true\. A call with another method, path or query is refused\.$/;
  const page = await openFromInbox('Bound B-1', expected);

  const cell = page.locator('#approved-request');
  assert.match((await cell.textContent()) ?? '', expected);
  assert.equal(await cell.locator('code.request').textContent(), 'DELETE /items/archive/4?force=true');
  assert.doesNotMatch((await page.textContent('body')) ?? '', /Any path/, 'the page does not call a bound path open');
});

test('bound path of any method', async () => {
  await ask({ action: 'echo', path: '/echo/doc?v=1' }, 'Bound B-2');
  const page = await openFromInbox('Bound B-2', /^Only the request \/echo\/doc\?v=1, with any method\./);
  assert.equal(await page.locator('#approved-request code.request').textContent(), '/echo/doc?v=1');
});
