import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser } from 'playwright-core';
import { startTestServer, type TestServer } from '../harness.ts';
import { createUserRecord } from '../../src/admin/users.ts';
import { createClientRecord } from '../../src/admin/clients.ts';
import { createResourceRecord } from '../../src/admin/resources.ts';
import { storeDelegation } from './fixtures.ts';

describe('my delegations page', () => {
  let server: TestServer;
  let browser: Browser;
  let delegationId: string;
  let othersDelegationId: string;

  before(async () => {
    server = await startTestServer();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'] });

    const dana = await createUserRecord(server.ctx, { username: 'dana', display_name: 'Dana', password: 'correct horse battery' }, 'test');
    const erin = await createUserRecord(server.ctx, { username: 'erin', password: 'correct horse battery' }, 'test');
    const agent = await createClientRecord(server.ctx, 'agent', { name: 'Travel Agent' }, 'test');
    const resource = await createResourceRecord(server.ctx, { name: 'calendar', display_name: 'Team Calendar', upstream_base_url: 'https://calendar.example', actions: [{ name: 'events.read' }, { name: 'events.write' }] }, 'test');

    delegationId = (await storeDelegation(server.ctx, { userId: dana.id, clientId: agent.client_id, resourceId: resource.id, scope: 'events.read events.write', refreshTokens: 2 })).id;
    othersDelegationId = (await storeDelegation(server.ctx, { userId: erin.id, clientId: agent.client_id, resourceId: resource.id, scope: 'events.read' })).id;
  });

  after(async () => {
    await browser.close();
    await server.stop();
  });

  test('signed-out visitor is sent to sign in', async () => {
    const response = await fetch(`${server.url}/account/delegations`, { redirect: 'manual' });
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('location'), '/login?return_to=%2Faccount%2Fdelegations');
  });

  test('person signs in, sees and revokes a delegation', async () => {
    const page = await browser.newPage();
    // Failed subresource loads (a stylesheet blocked by the CSP, a missing asset) show up here; the browser's own favicon probe does not count.
    const errors: string[] = [];
    page.on('response', (response) => {
      if (response.status() >= 400 && new URL(response.url()).pathname !== '/favicon.ico') errors.push(`${response.status()} ${response.url()}`);
    });

    await page.goto(`${server.url}/account/delegations`);
    assert.match(new URL(page.url()).pathname, /^\/login/);
    await page.fill('input[name=username]', 'dana');
    await page.fill('input[name=password]', 'correct horse battery');
    await Promise.all([page.waitForURL(`${server.url}/account/delegations`), page.click('button[type=submit]')]);

    const row = page.locator(`tr[data-delegation-id="${delegationId}"]`);
    assert.equal(await row.count(), 1);
    const text = await row.innerText();
    assert.match(text, /Travel Agent/);
    assert.match(text, /Team Calendar/);
    assert.match(text, new RegExp(`${server.issuer}/gateway/calendar`));
    assert.match(text, /events\.read/);
    assert.match(text, /events\.write/);
    assert.equal(await page.locator(`tr[data-delegation-id="${othersDelegationId}"]`).count(), 0);

    await Promise.all([page.waitForURL(/notice=revoked/), row.getByRole('button', { name: /Revoke/ }).click()]);
    assert.match(await page.locator('.notice').innerText(), /revoked/);
    assert.equal(await page.locator(`tr[data-delegation-id="${delegationId}"]`).count(), 0);
    assert.equal(await page.locator('#no-delegations').count(), 1);
    assert.deepEqual(errors, []);

    const delegation = await server.ctx.db.selectFrom('delegations').select(['revoked_at', 'revoked_reason']).where('id', '=', delegationId).executeTakeFirstOrThrow();
    assert.equal(typeof delegation.revoked_at, 'number');
    const tokens = await server.ctx.db.selectFrom('refresh_tokens').select('revoked_at').where('delegation_id', '=', delegationId).execute();
    assert.equal(tokens.length, 2);
    assert.ok(tokens.every((token) => token.revoked_at !== null));

    const other = await server.ctx.db.selectFrom('delegations').select('revoked_at').where('id', '=', othersDelegationId).executeTakeFirstOrThrow();
    assert.equal(other.revoked_at, null);
    await page.close();
  });

  test('person cannot revoke another person\'s delegation', async () => {
    const dana = await server.ctx.db.selectFrom('users').select('id').where('username', '=', 'dana').executeTakeFirstOrThrow();
    const other = await server.ctx.db.selectFrom('delegations').select(['client_id', 'resource_id']).where('id', '=', othersDelegationId).executeTakeFirstOrThrow();
    await storeDelegation(server.ctx, { userId: dana.id, clientId: other.client_id, resourceId: other.resource_id, scope: 'events.read' });

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/login?return_to=%2Faccount%2Fdelegations`);
    await page.fill('input[name=username]', 'dana');
    await page.fill('input[name=password]', 'correct horse battery');
    await Promise.all([page.waitForURL(`${server.url}/account/delegations`), page.click('button[type=submit]')]);

    // Submit the page's own form with its CSRF token, pointed at someone else's delegation.
    const token = (await page.locator('input[name=_csrf]').first().getAttribute('value')) ?? '';
    const response = await context.request.post(`${server.url}/account/delegations/${othersDelegationId}/revoke`, { form: { _csrf: token }, maxRedirects: 0 });
    assert.equal(response.status(), 303);
    assert.match(response.headers().location ?? '', /notice=not-found/);

    const afterAttempt = await server.ctx.db.selectFrom('delegations').select('revoked_at').where('id', '=', othersDelegationId).executeTakeFirstOrThrow();
    assert.equal(afterAttempt.revoked_at, null);
    await context.close();
  });

  test('revoke without CSRF token is rejected', async () => {
    const erin = await server.ctx.db.selectFrom('users').select('id').where('username', '=', 'erin').executeTakeFirstOrThrow();
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/login?return_to=%2Faccount%2Fdelegations`);
    await page.fill('input[name=username]', 'erin');
    await page.fill('input[name=password]', 'correct horse battery');
    await Promise.all([page.waitForURL(`${server.url}/account/delegations`), page.click('button[type=submit]')]);

    // Erin's own delegation, posted with her session cookie but no token.
    const response = await context.request.post(`${server.url}/account/delegations/${othersDelegationId}/revoke`, { form: {}, maxRedirects: 0 });
    assert.equal(response.status(), 403);
    const delegation = await server.ctx.db.selectFrom('delegations').select(['user_id', 'revoked_at']).where('id', '=', othersDelegationId).executeTakeFirstOrThrow();
    assert.equal(delegation.user_id, erin.id);
    assert.equal(delegation.revoked_at, null);
    await context.close();
  });
});
