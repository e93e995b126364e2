import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../harness.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { createUser } from '../../src/identity/users.ts';
import { decideApproval } from '../../src/approvals/service.ts';
import { callGateway, createWorld, delegatedToken, PASSWORD, startUpstream, type Upstream, type World } from '../gateway/world.ts';

let server: TestServer;
let upstream: Upstream;
let browser: Browser;

before(async () => {
  server = await startTestServer();
  upstream = await startUpstream();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'] });
});

after(async () => {
  await browser.close();
  await upstream.close();
  await server.stop();
});

interface ApprovalRequired {
  error: string;
  error_description: string;
  approval_id: string;
  approval_uri: string;
  expires_in: number;
}

/** Makes the call that needs approval and returns the 403 body. */
async function requestApproval(world: World, token: string, path = '/send/mail?to=bob', body = '{"subject":"Quarterly numbers","to":"bob@example.test"}'): Promise<ApprovalRequired> {
  const response = await callGateway(server, world, path, { method: 'POST', token, body, headers: { 'content-type': 'application/json' } });
  assert.equal(response.status, 403);
  return (await response.json()) as ApprovalRequired;
}

/** Opens a page in a fresh browser context, signs in at the redirect, and lands on `path`. */
async function signedInPage(username: string, path: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.issuer}${path}`);
  assert.match(new URL(page.url()).pathname, /^\/login$/);
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL(`${server.issuer}${path}`), page.click('#sign-in')]);
  return page;
}

async function decideInBrowser(world: World, approval: ApprovalRequired, button: '#approve' | '#deny'): Promise<Page> {
  const path = new URL(approval.approval_uri).pathname;
  const page = await signedInPage(world.user.username, path);
  await Promise.all([page.waitForURL(`${server.issuer}${path}`), page.click(button)]);
  return page;
}

test('approval required names the approval', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const before = upstream.received.length;

  const approval = await requestApproval(world, token);
  assert.equal(approval.error, 'approval_required');
  assert.match(approval.approval_id, /^apr_/);
  assert.equal(approval.approval_uri, `${server.issuer}/approvals/${approval.approval_id}`);
  assert.ok(approval.expires_in > 0);
  assert.ok(approval.expires_in <= server.ctx.config.approvalTtlSeconds);
  assert.equal(upstream.received.length, before, 'nothing reached the upstream');

  const row = await server.ctx.db.selectFrom('approvals').selectAll().where('id', '=', approval.approval_id).executeTakeFirstOrThrow();
  assert.equal(row.status, 'pending');
  assert.equal(row.method, 'POST');
  assert.equal(row.path, '/send/mail?to=bob');
  assert.equal(row.user_id, world.user.id);
  assert.equal(row.client_id, world.agentId);

  const again = await requestApproval(world, token);
  assert.equal(again.approval_id, approval.approval_id, 'a repeated request reuses the pending approval');

  const audit = await readAudit(server.ctx.db, { limit: 1000 });
  assert.ok(audit.some((record) => record.event.event === 'approval.requested' && record.event.target?.approval_id === approval.approval_id));
});

test('approved call passes exactly once', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const body = '{"subject":"Quarterly numbers","to":"bob@example.test"}';
  const approval = await requestApproval(world, token, '/send/mail?to=bob', body);

  const page = await decideInBrowser(world, approval, '#approve');
  const details = await page.textContent('#approval');
  assert.match(details ?? '', /Filing Agent/);
  assert.match(details ?? '', /POST \/send\/mail\?to=bob/);
  assert.match(details ?? '', /"subject": "Quarterly numbers"/, 'the body is shown as pretty JSON');
  assert.match((await page.textContent('#status')) ?? '', /approved/);
  await page.context().close();

  const before = upstream.received.length;
  const retry = await callGateway(server, world, '/send/mail?to=bob', { method: 'POST', token, body, headers: { 'content-type': 'application/json', 'mandate-approval': approval.approval_id } });
  assert.equal(retry.status, 200);
  assert.equal(upstream.received.length, before + 1);
  assert.equal(upstream.received.at(-1)?.body.toString('utf8'), body);

  const replay = await callGateway(server, world, '/send/mail?to=bob', { method: 'POST', token, body, headers: { 'content-type': 'application/json', 'mandate-approval': approval.approval_id } });
  assert.equal(replay.status, 403);
  const replayBody = (await replay.json()) as Record<string, unknown>;
  assert.equal(replayBody.error, 'access_denied');
  assert.match(String(replayBody.error_description), /already used/);
  assert.equal(upstream.received.length, before + 1, 'the replay did not reach the upstream');

  const audit = await readAudit(server.ctx.db, { limit: 1000 });
  assert.ok(audit.some((record) => record.event.event === 'approval.decided' && record.event.target?.approval_id === approval.approval_id));
  assert.ok(audit.some((record) => record.event.event === 'gateway.call' && record.event.reason?.approval_id === approval.approval_id));
});

test('denied approval stops the call', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const approval = await requestApproval(world, token);

  const page = await decideInBrowser(world, approval, '#deny');
  assert.match((await page.textContent('#status')) ?? '', /denied/);
  await page.context().close();

  const before = upstream.received.length;
  const retry = await callGateway(server, world, '/send/mail?to=bob', { method: 'POST', token, body: '{"subject":"Quarterly numbers","to":"bob@example.test"}', headers: { 'content-type': 'application/json', 'mandate-approval': approval.approval_id } });
  assert.equal(retry.status, 403);
  assert.match(String(((await retry.json()) as Record<string, unknown>).error_description), /denied/);
  assert.equal(upstream.received.length, before);
});

test('approval refused for another request', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const body = '{"subject":"Quarterly numbers","to":"bob@example.test"}';
  const approval = await requestApproval(world, token, '/send/mail?to=bob', body);
  const page = await decideInBrowser(world, approval, '#approve');
  await page.context().close();

  const before = upstream.received.length;
  const variants: [string, string][] = [
    ['/send/mail?to=bob', '{"subject":"Quarterly numbers","to":"mallory@example.test"}'],
    ['/send/mail?to=mallory', body],
    ['/send/other?to=bob', body],
  ];
  for (const [path, variantBody] of variants) {
    const response = await callGateway(server, world, path, { method: 'POST', token, body: variantBody, headers: { 'content-type': 'application/json', 'mandate-approval': approval.approval_id } });
    assert.equal(response.status, 403, path);
    assert.match(String(((await response.json()) as Record<string, unknown>).error_description), /does not match this request/, path);
  }
  assert.equal(upstream.received.length, before);

  const original = await callGateway(server, world, '/send/mail?to=bob', { method: 'POST', token, body, headers: { 'content-type': 'application/json', 'mandate-approval': approval.approval_id } });
  assert.equal(original.status, 200, 'the mismatches did not use up the approval');
});

test('approval page hidden from others', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const approval = await requestApproval(world, token);
  await createUser(server.ctx, { username: `mallory-${world.resourceName}`, password: PASSWORD });

  const path = new URL(approval.approval_uri).pathname;
  const page = await signedInPage(`mallory-${world.resourceName}`, path);
  const response = await page.goto(`${server.issuer}${path}`);
  assert.equal(response?.status(), 404);
  await page.context().close();

  const anonymous = await fetch(approval.approval_uri, { redirect: 'manual' });
  assert.equal(anonymous.status, 303);
  assert.match(anonymous.headers.get('location') ?? '', /^\/login\?return_to=/);

  const row = await server.ctx.db.selectFrom('approvals').select('status').where('id', '=', approval.approval_id).executeTakeFirstOrThrow();
  assert.equal(row.status, 'pending');
});

test('approving needs a recent sign-in', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const approval = await requestApproval(world, token);
  const path = new URL(approval.approval_uri).pathname;
  const page = await signedInPage(world.user.username, path);

  await server.ctx.db.updateTable('sessions').set({ auth_time: Math.floor(Date.now() / 1000) - 16 * 60 }).where('user_id', '=', world.user.id).execute();
  await page.reload();
  await Promise.all([page.waitForURL(/\/login\?return_to=/), page.click('#approve')]);

  const row = await server.ctx.db.selectFrom('approvals').select('status').where('id', '=', approval.approval_id).executeTakeFirstOrThrow();
  assert.equal(row.status, 'pending');
  await page.context().close();
});

test('approval page rejects a missing CSRF token', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const approval = await requestApproval(world, token);

  const response = await fetch(`${approval.approval_uri}/approve`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
  assert.equal(response.status >= 400 && response.status < 500, true, `status ${response.status}`);
  const row = await server.ctx.db.selectFrom('approvals').select('status').where('id', '=', approval.approval_id).executeTakeFirstOrThrow();
  assert.equal(row.status, 'pending');
});

test('concurrent uses pass once', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const body = '{"subject":"race"}';
  const approval = await requestApproval(world, token, '/send/race', body);
  const decided = await decideApproval(server.ctx, { id: approval.approval_id, userId: world.user.id, decision: 'approved' });
  assert.equal(decided.ok, true);

  const before = upstream.received.length;
  const attempts = await Promise.all(
    Array.from({ length: 5 }, () => callGateway(server, world, '/send/race', { method: 'POST', token, body, headers: { 'content-type': 'application/json', 'mandate-approval': approval.approval_id } })),
  );
  const statuses = attempts.map((response) => response.status).sort();
  assert.deepEqual(statuses, [200, 403, 403, 403, 403]);
  assert.equal(upstream.received.length, before + 1);
});

test('expired approval is refused', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const body = '{"subject":"late"}';
  const approval = await requestApproval(world, token, '/send/late', body);
  await decideApproval(server.ctx, { id: approval.approval_id, userId: world.user.id, decision: 'approved' });
  await server.ctx.db.updateTable('approvals').set({ expires_at: Math.floor(Date.now() / 1000) - 1 }).where('id', '=', approval.approval_id).execute();

  const response = await callGateway(server, world, '/send/late', { method: 'POST', token, body, headers: { 'content-type': 'application/json', 'mandate-approval': approval.approval_id } });
  assert.equal(response.status, 403);
  assert.match(String(((await response.json()) as Record<string, unknown>).error_description), /expired/);

  const late = await decideApproval(server.ctx, { id: approval.approval_id, userId: world.user.id, decision: 'denied' });
  assert.deepEqual(late, { ok: false, reason: 'already_decided' });
});
