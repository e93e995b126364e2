import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { startTestServer, type TestServer } from '../../packages/server/test/harness.ts';
import { launchBrowser } from '../../packages/server/test/browser.ts';
import { runDelegatedCall, type ScenarioReport } from './scenario.ts';

let server: TestServer;
let browser: Browser;
let report: ScenarioReport;
const steps: string[] = [];

before(async () => {
  server = await startTestServer();
  browser = await launchBrowser();
  // Each step also goes to standard error, so a run that stops shows how far it got.
  const log = (step: string, detail?: string) => {
    steps.push(`[${step}] ${detail ?? ''}`);
    process.stderr.write(`example step [${step}] done at ${new Date().toISOString()}\n`);
  };
  report = await runDelegatedCall({ issuer: server.issuer, ctx: server.ctx, browser, log });
});
after(async () => {
  await browser.close();
  await server.stop();
});

test('consent page names agent, resource, scopes', () => {
  const text = String(report.consentPage);
  assert.match(text, /Mail assistant/);
  assert.match(text, /Mail/);
  assert.match(text, /mail\.read/);
  assert.match(text, /mail\.send/);
});

test('scope beyond the person role is not granted', () => {
  assert.equal(report.grantedScope, 'openid mail.read mail.send');
  assert.equal(report.deleteBeyondRole, '403 insufficient_scope');
});

test('ID token goes to the client and is refused as access token', () => {
  assert.equal(report.idTokenSub, report.aliceId);
  assert.equal(report.idTokenAtGateway, '401 invalid_token');
  assert.equal(report.idTokenAtResource, 401);
});

test('wrong audience is refused by the resource', () => {
  assert.equal(report.wrongAudienceAtResource, 401);
});

test('refresh tokens rotate and a spent one is refused', () => {
  assert.equal(report.refreshRotated, true);
  assert.equal(report.oldRefreshRejected, true);
  assert.equal(report.accessAfterRefreshReuse, '401 invalid_token');
});

test('gateway call injects the vaulted credential', () => {
  assert.equal(report.readStatus, 200);
  assert.equal(report.upstreamSawKey, true);
});

test('approval is needed, works once, then is refused', () => {
  assert.equal(report.approvalRequired, true);
  assert.match(String(report.approvalPage), /bob@example\.test/);
  assert.equal(report.approvedStatus, 200);
  assert.equal(report.approvalReused, '403 access_denied');
});

test('demotion denies the next call with the same token', () => {
  assert.equal(report.afterDemotion, '403 insufficient_scope');
  assert.equal(report.afterRestore, 200);
});

test('token exchange yields an agent token for the resource', () => {
  assert.equal(report.exchangeAtResource, 200);
  assert.deepEqual(report.exchangeCaller, { sub: report.aliceId, actor: (report.exchangeCaller as { actor: string }).actor });
  assert.match(String((report.exchangeCaller as { actor: string }).actor), /^agt_/);
  assert.equal(report.exchangeWidening, true);
});

test('revocation stops the gateway and refresh at once', () => {
  assert.ok(Number(report.delegationsRevoked) >= 1);
  assert.equal(report.afterRevocation, '401 invalid_token');
  assert.equal(report.refreshAfterRevocation, true);
});

test('audit log refuses updates and detects an altered entry', () => {
  assert.equal((report.auditBefore as { ok: boolean }).ok, true);
  assert.equal(report.updateRefused, true);
  assert.deepEqual({ ok: (report.auditAfter as { ok: boolean }).ok, seq: (report.auditAfter as { firstBadSeq: number }).firstBadSeq }, { ok: false, seq: 5 });
});

test('upstream credential never reaches the agent or the log', () => {
  assert.equal(report.credentialSeenByAgent, false);
  assert.ok(Number(report.upstreamRequests) >= 3);
  const logText = server.logs.join('');
  assert.equal(logText.includes('upstream-key-'), false);
});

test('logs carry tenant, request, user and agent ids', () => {
  const forwarded = server.logs.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.msg === 'gateway call forwarded');
  assert.ok(forwarded !== undefined, 'expected a log line for a forwarded gateway call');
  assert.equal(forwarded.tenant, 'default');
  assert.equal(forwarded.user, report.aliceId);
  assert.match(String(forwarded.agent), /^agt_/);
  assert.match(String(forwarded.reqId), /^req_/);
});

test('example prints every step', () => {
  for (const step of ['admin', 'consent', 'refresh', 'gateway', 'negative', 'approval', 'demotion', 'exchange', 'revocation', 'audit']) {
    assert.ok(steps.some((line) => line.startsWith(`[${step}]`)), `missing step ${step}`);
  }
});
