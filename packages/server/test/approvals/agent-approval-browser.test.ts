import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { ApprovalDeniedError, ApprovalRejectedError, MandateAgent, type PendingApproval } from '@mandate/agent';
import { launchBrowser, signIn } from '../browser.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { createWorld, delegatedToken, PASSWORD, startUpstream, type Upstream, type World } from '../gateway/world.ts';

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

const BODY = JSON.stringify({ subject: 'Quarterly numbers', to: 'bob@example.test', attachments: ['q3.pdf'] });

/**
 * Starts the agent's call through @mandate/agent, which waits for the approval, and resolves
 * `approval` once the gateway has asked for it. `result` settles when the agent's call ends.
 */
function startAgentCall(world: World, token: string): { approval: Promise<PendingApproval>; result: Promise<Response>; agent: MandateAgent; request: Parameters<MandateAgent['callGateway']>[0] } {
  const agent = new MandateAgent({ issuer: server.issuer, clientId: world.agentId, clientSecret: world.agentSecret });
  const request = { url: `${world.resourceName}/send/mail?to=bob`, method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY, accessToken: token };
  let announce: (approval: PendingApproval) => void = () => undefined;
  const approval = new Promise<PendingApproval>((resolve) => {
    announce = resolve;
  });
  const result = agent.callGatewayWithApproval(request, { pollIntervalMs: 200, timeoutMs: 60_000, onApprovalRequired: (pending) => announce(pending) });
  // The test awaits `result` later; until then a rejection must not count as unhandled.
  result.catch(() => undefined);
  return { approval, result, agent, request };
}

/** Signs in at the inbox, checks the pending approval is listed with its arguments, and opens it. */
async function openFromInbox(world: World, approvalId: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.issuer}/approvals`);
  await signIn(page, world.user.username, PASSWORD);
  assert.equal(new URL(page.url()).pathname, '/approvals', 'the sign-in returns to the inbox');

  const item = page.locator(`#approval-${approvalId}`);
  assert.equal(await item.count(), 1, 'the inbox lists the pending approval');
  assert.match((await item.locator('.agent').textContent()) ?? '', /^Filing Agent /);
  assert.equal(await item.locator('.action').textContent(), 'send');
  assert.equal(await item.locator('.arguments pre').textContent(), JSON.stringify(JSON.parse(BODY), null, 2));

  await Promise.all([page.waitForURL(`${server.issuer}/approvals/${approvalId}`), item.locator('a').click()]);
  assert.equal(await page.textContent('#person'), world.user.display_name);
  assert.match((await page.textContent('#body')) ?? '', /"to": "bob@example.test"/);
  return page;
}

test('approved in the browser, the agent call passes once', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const before = upstream.received.length;

  const call = startAgentCall(world, token);
  const approval = await call.approval;
  assert.equal(upstream.received.length, before, 'nothing reached the upstream before the approval');

  const page = await openFromInbox(world, approval.approvalId);
  await Promise.all([page.waitForURL(`${server.issuer}/approvals/${approval.approvalId}`), page.click('#approve')]);
  assert.match((await page.textContent('#status')) ?? '', /approved/);

  const response = await call.result;
  assert.equal(response.status, 200);
  assert.equal(upstream.received.length, before + 1, 'the upstream got the call once');
  assert.equal(upstream.received.at(-1)?.body.toString('utf8'), BODY);

  await page.reload();
  assert.match((await page.textContent('#status')) ?? '', /the agent has made the call/);
  await page.context().close();

  const replay = await call.agent.callGateway({ ...call.request, approvalId: approval.approvalId }).then(
    () => assert.fail('the second use of the approval must be refused'),
    (error: unknown) => error,
  );
  assert.ok(replay instanceof ApprovalRejectedError);
  assert.equal(replay.reason, 'used');
  assert.equal(upstream.received.length, before + 1, 'the second use did not reach the upstream');
});

test('denied in the browser, the agent call stops', async () => {
  const world = await createWorld(server, upstream.url);
  const token = await delegatedToken(server, world);
  const before = upstream.received.length;

  const call = startAgentCall(world, token);
  const approval = await call.approval;
  const page = await openFromInbox(world, approval.approvalId);
  await Promise.all([page.waitForURL(`${server.issuer}/approvals/${approval.approvalId}`), page.click('#deny')]);
  assert.match((await page.textContent('#status')) ?? '', /denied/);
  await page.context().close();

  const error = await call.result.then(
    () => assert.fail('a denied call must not pass'),
    (rejection: unknown) => rejection,
  );
  assert.ok(error instanceof ApprovalDeniedError, `got ${String(error)}`);
  assert.equal(error.approvalId, approval.approvalId);
  assert.equal(upstream.received.length, before);
});
