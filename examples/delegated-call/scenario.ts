import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { exportJWK, generateKeyPair } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { MandateAgent, ApprovalRequiredError, ForbiddenError, UnauthorizedError, TokenEndpointError } from '@mandate/agent';
import type { ServerContext } from '../../packages/server/src/context.ts';
import { bootstrapAdminClient } from '../../packages/server/src/admin/bootstrap.ts';
import { verifyAuditLog } from '../../packages/server/src/audit/verify.ts';
import { AdminApi } from './admin.ts';
import { startCallbackServer, type CallbackServer } from './callback.ts';
import { startMailUpstream, startNotesApi } from './services.ts';
import { tamperWithAuditEntry } from './tamper.ts';

export const ALICE_PASSWORD = 'a long example passphrase';

/** Maximum time for one HTTP exchange. Each takes milliseconds, so reaching it means something hangs. */
const HTTP_TIMEOUT_MS = 15_000;
/** Maximum time for one browser action, navigation, new page or page close. */
const BROWSER_TIMEOUT_MS = 15_000;
/** Maximum time for each database operation that the scenario runs directly on `ctx`. */
const DATABASE_TIMEOUT_MS = 15_000;

/** Runs fetch with a timeout of HTTP_TIMEOUT_MS, also for the agent SDK. A caller's own signal replaces the timeout. */
const fetchWithTimeout: typeof fetch = async (input, init) => {
  try {
    return await fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  } catch (error) {
    if (!(error instanceof DOMException && error.name === 'TimeoutError')) throw error;
    const url = input instanceof Request ? input.url : String(input);
    throw new Error(`${init?.method ?? 'GET'} ${url} timed out after ${HTTP_TIMEOUT_MS} ms without a response`, { cause: error });
  }
};

/** Facts the scenario observed; the test asserts on them and the example prints them. */
export interface ScenarioReport {
  [fact: string]: unknown;
}

export interface ScenarioOptions {
  issuer: string;
  ctx: ServerContext;
  browser: Browser;
  log: (step: string, detail?: string) => void;
}

/**
 * Carries one delegated tool call through Mandate. An operator sets up records through the
 * admin API, and Alice signs in and delegates to an agent. The agent calls a third-party API
 * through the gateway and an internal API directly, and every negative case is tried.
 */
export async function runDelegatedCall(options: ScenarioOptions): Promise<ScenarioReport> {
  const { issuer, ctx, browser, log } = options;
  const report: ScenarioReport = {};
  const apiKey = `upstream-key-${randomBytes(12).toString('hex')}`;
  const received: string[] = [];
  const keep = (value: unknown) => received.push(typeof value === 'string' ? value : JSON.stringify(value));

  const upstream = await startMailUpstream(apiKey);
  const callback = await startCallbackServer();
  const notesAudience = `${issuer}/notes-api`;
  const notes = await startNotesApi(issuer, notesAudience);
  const session: BrowserContext = await browser.newContext();
  // Playwright actions, navigations and waits fail after this time. Opening and closing a page have no timeout of their own (see closePage).
  session.setDefaultTimeout(BROWSER_TIMEOUT_MS);
  // The step that runs now, named as in the log, so that the error of a failure names it.
  let step = 'admin';

  try {
    // 1. The operator bootstraps an admin client and sets up records through the admin API.
    const bootstrap = await withTimeout(bootstrapAdminClient(ctx, {}, 'example'), DATABASE_TIMEOUT_MS, 'creating the admin client');
    const adminAgent = new MandateAgent({ issuer, clientId: bootstrap.client_id, clientSecret: bootstrap.client_secret, fetch: fetchWithTimeout });
    const adminToken = await adminAgent.clientCredentials({ resource: `${issuer}/admin` });
    const admin = new AdminApi(issuer, adminToken.accessToken);
    log('admin', `bootstrapped admin client ${bootstrap.client_id} and obtained an admin token`);

    const mail = await admin.call<{ identifier: string }>('POST', '/resources', {
      name: 'mail',
      display_name: 'Mail',
      upstream_base_url: upstream.url,
      actions: [
        { name: 'mail.read', description: 'Read your messages', method: 'GET', path_prefix: '/messages' },
        { name: 'mail.send', description: 'Send messages as you', method: 'POST', path_prefix: '/messages/send', requires_approval: true },
        { name: 'mail.delete', description: 'Delete messages', method: 'DELETE', path_prefix: '/messages' },
      ],
    });
    await admin.call('POST', '/resources', { name: 'notes', display_name: 'Notes', identifier: notesAudience, actions: [{ name: 'notes.read', description: 'Read your notes' }] });
    await admin.call('POST', '/roles', { name: 'mail-user', permissions: [{ resource: mail.identifier, action: 'mail.read' }, { resource: mail.identifier, action: 'mail.send' }] });
    await admin.call('POST', '/roles', { name: 'mail-admin', permissions: [{ resource: mail.identifier, action: '*' }] });
    await admin.call('POST', '/roles', { name: 'notes-reader', permissions: [{ resource: notesAudience, action: 'notes.read' }] });
    const alice = await admin.call<{ id: string }>('POST', '/users', { username: 'alice', password: ALICE_PASSWORD, display_name: 'Alice', roles: ['mail-user', 'notes-reader'] });

    const agentKeys = await generateKeyPair('EdDSA');
    const agentJwk = { ...(await exportJWK(agentKeys.publicKey)), kid: 'agent-key-1', alg: 'EdDSA', use: 'sig' };
    const agentRecord = await admin.call<{ client_id: string }>('POST', '/agents', { name: 'Mail assistant', jwks: { keys: [agentJwk] }, redirect_uris: [callback.url], roles: ['mail-admin', 'notes-reader'] });
    const portal = await admin.call<{ client_id: string; client_secret: string }>('POST', '/applications', { name: 'Alice portal', redirect_uris: [callback.url] });
    await admin.call('PUT', `/users/alice/credentials/mail`, { credential: apiKey });
    log('admin', `created resource ${mail.identifier}, roles, person alice, agent ${agentRecord.client_id} (private_key_jwt) and alice's vaulted mail API key`);

    // 2. Alice signs in and lets the agent use her mail (authorization code + PKCE, openid-client).
    step = 'consent';
    // openid-client takes the timeout in seconds and keeps it for every later request of the configuration.
    const agentConfig = await oidc.discovery(new URL(issuer), agentRecord.client_id, {}, oidc.PrivateKeyJwt({ key: agentKeys.privateKey, kid: 'agent-key-1' }), { execute: [oidc.allowInsecureRequests], timeout: HTTP_TIMEOUT_MS / 1000 });
    const consent = await authorizeInBrowser(session, callback, agentConfig, { scope: 'openid mail.read mail.send mail.delete', resource: mail.identifier });
    report.consentPage = consent.consentText;
    const firstTokens = await oidc.authorizationCodeGrant(agentConfig, consent.returned, { pkceCodeVerifier: consent.verifier, expectedState: consent.state, expectedNonce: consent.nonce, idTokenExpected: true }, { resource: mail.identifier });
    keep(firstTokens);
    report.grantedScope = firstTokens.scope;
    report.idTokenSub = firstTokens.claims()?.sub;
    report.aliceId = alice.id;
    log('consent', `alice allowed the agent; granted scope "${firstTokens.scope ?? ''}" (mail.delete is beyond her roles, so it was not granted)`);

    // 3. The agent process uses @mandate/agent from here on: refresh (rotation), then call the gateway.
    step = 'refresh';
    const agent = new MandateAgent({ issuer, clientId: agentRecord.client_id, privateKey: agentKeys.privateKey, keyId: 'agent-key-1', fetch: fetchWithTimeout });
    const tokens = await agent.refresh({ refreshToken: firstTokens.refresh_token ?? '' });
    keep(tokens);
    report.refreshRotated = tokens.refreshToken !== undefined && tokens.refreshToken !== firstTokens.refresh_token;
    report.oldRefreshRejected = await rejects(() => agent.refresh({ refreshToken: firstTokens.refresh_token ?? '' }), TokenEndpointError);
    report.accessAfterRefreshReuse = await gatewayError(agent, `${issuer}/gateway/mail/messages`, tokens.accessToken);
    log('refresh', `the agent refreshed; presenting the spent refresh token again revoked the grant, and its newest access token now gets ${String(report.accessAfterRefreshReuse)}`);

    // The reuse above revoked the family, so the agent starts a fresh delegation for the rest.
    step = 'gateway';
    const second = await authorizeInBrowser(session, callback, agentConfig, { scope: 'mail.read mail.send', resource: mail.identifier });
    const delegated = await oidc.authorizationCodeGrant(agentConfig, second.returned, { pkceCodeVerifier: second.verifier, expectedState: second.state }, { resource: mail.identifier });
    keep(delegated);
    const idToken = firstTokens.id_token ?? '';
    let accessToken = delegated.access_token;
    let refreshToken = delegated.refresh_token ?? '';

    const read = await agent.callGateway({ url: `${issuer}/gateway/mail/messages`, accessToken });
    const readBody = await read.text();
    keep({ status: read.status, headers: Object.fromEntries(read.headers), body: readBody });
    report.readStatus = read.status;
    report.upstreamSawKey = upstream.received.at(-1)?.authorization === `Bearer ${apiKey}`;
    log('gateway', `GET /messages through the gateway: ${read.status}; the upstream received alice's key, the agent got ${readBody}`);

    // 4. Negative cases on the token itself.
    step = 'negative';
    report.idTokenAtGateway = await gatewayError(agent, `${issuer}/gateway/mail/messages`, idToken);
    const idAtNotes = await fetchWithTimeout(notes.url, { headers: { authorization: `Bearer ${idToken}` } });
    report.idTokenAtResource = idAtNotes.status;
    const wrongAudience = await fetchWithTimeout(notes.url, { headers: { authorization: `Bearer ${accessToken}` } });
    report.wrongAudienceAtResource = wrongAudience.status;
    report.deleteBeyondRole = await gatewayError(agent, `${issuer}/gateway/mail/messages/1`, accessToken, 'DELETE');
    log('negative', `ID token at gateway: ${String(report.idTokenAtGateway)}; ID token at the notes API: ${idAtNotes.status}; mail token at the notes API: ${wrongAudience.status}; DELETE beyond alice's role: ${String(report.deleteBeyondRole)}`);

    // 5. Sending mail needs alice's approval, bound to this exact request, usable once.
    step = 'approval';
    const sendBody = JSON.stringify({ to: 'bob@example.test', subject: 'Hello' });
    const send = { url: `${issuer}/gateway/mail/messages/send`, method: 'POST', headers: { 'content-type': 'application/json' }, body: sendBody, accessToken };
    let approval: ApprovalRequiredError | undefined;
    try {
      await agent.callGateway(send);
    } catch (error) {
      if (error instanceof ApprovalRequiredError) approval = error;
      else throw error;
    }
    report.approvalRequired = approval !== undefined;
    if (approval?.approvalUri === undefined) throw new Error('The send call did not ask for approval with an approval URI.');
    log('approval', `the send call is paused: approval ${approval.approvalId} waits at ${approval.approvalUri}`);

    const approvalPage = await withTimeout(session.newPage(), BROWSER_TIMEOUT_MS, 'opening a page for the approval');
    await approvalPage.goto(approval.approvalUri);
    report.approvalPage = await approvalPage.textContent('main');
    await Promise.all([approvalPage.waitForResponse((response) => response.request().method() === 'POST'), approvalPage.click('button[value="approve"], #approve')]);
    // The decision redirects back to the same URL. Closing the page while Chromium commits that
    // navigation can hang page.close() for good, so wait until the new page shows the decision.
    await approvalPage.locator('#status', { hasText: /approved/ }).waitFor();
    await closePage(approvalPage, 'the approval page');
    const approved = await agent.callGateway({ ...send, approvalId: approval.approvalId });
    const approvedBody = await approved.text();
    keep({ status: approved.status, headers: Object.fromEntries(approved.headers), body: approvedBody });
    report.approvedStatus = approved.status;
    report.approvalReused = await gatewayError(agent, send.url, accessToken, 'POST', sendBody, approval.approvalId);
    log('approval', `alice approved in the browser; the call went through (${approved.status}); the same approval again: ${String(report.approvalReused)}`);

    // 6. Demotion takes effect on the next call, with the same token.
    step = 'demotion';
    await admin.call('DELETE', '/users/alice/roles/mail-user');
    report.afterDemotion = await gatewayError(agent, `${issuer}/gateway/mail/messages`, accessToken);
    await admin.call('POST', '/users/alice/roles', { role: 'mail-user' });
    const restored = await agent.callGateway({ url: `${issuer}/gateway/mail/messages`, accessToken });
    report.afterRestore = restored.status;
    keep(await restored.text());
    log('demotion', `alice lost mail-user: next call ${String(report.afterDemotion)}; role restored: ${restored.status}`);

    // 7. Token exchange: alice's portal token plus the agent's own token give the agent a notes token.
    // Mandate exchanges only for an agent the person has delegated to, so alice consents first.
    step = 'exchange';
    await authorizeInBrowser(session, callback, agentConfig, { scope: 'notes.read', resource: notesAudience });
    const portalConfig = await oidc.discovery(new URL(issuer), portal.client_id, {}, oidc.ClientSecretBasic(portal.client_secret), { execute: [oidc.allowInsecureRequests], timeout: HTTP_TIMEOUT_MS / 1000 });
    const portalGrant = await authorizeInBrowser(session, callback, portalConfig, { scope: 'notes.read', resource: notesAudience });
    const personToken = await oidc.authorizationCodeGrant(portalConfig, portalGrant.returned, { pkceCodeVerifier: portalGrant.verifier, expectedState: portalGrant.state });
    const actorToken = await agent.clientCredentials({ resource: notesAudience, scope: 'notes.read' });
    const exchanged = await agent.exchangeToken({ subjectToken: personToken.access_token, actorToken: actorToken.accessToken, resource: notesAudience, scope: 'notes.read' });
    keep(exchanged);
    const notesResponse = await fetchWithTimeout(notes.url, { headers: { authorization: `Bearer ${exchanged.accessToken}` } });
    report.exchangeAtResource = notesResponse.status;
    report.exchangeCaller = notes.callers.at(-1);
    report.exchangeWidening = await rejects(() => agent.exchangeToken({ subjectToken: personToken.access_token, actorToken: actorToken.accessToken, resource: notesAudience, scope: 'notes.read notes.write' }), TokenEndpointError);
    log('exchange', `token exchange gave the agent a notes token acting for alice: notes API answered ${notesResponse.status}; widening the scope was refused`);

    // 8. Revocation: alice's delegations to the agent end at once; the gateway and refresh stop.
    step = 'revocation';
    const delegations = await admin.call<{ items: Array<{ id: string; revoked_at: number | null }> }>('GET', `/delegations?agent=${agentRecord.client_id}&active=true`);
    const revoked = await admin.call<{ revoked: number }>('POST', `/agents/${agentRecord.client_id}/revoke-delegations`);
    report.delegationsRevoked = revoked.revoked ?? delegations.items.length;
    report.afterRevocation = await gatewayError(agent, `${issuer}/gateway/mail/messages`, accessToken);
    report.refreshAfterRevocation = await rejects(() => agent.refresh({ refreshToken }), TokenEndpointError);
    log('revocation', `revoked ${String(report.delegationsRevoked)} delegations of the agent: next gateway call ${String(report.afterRevocation)}, refresh refused: ${String(report.refreshAfterRevocation)}`);
    accessToken = '';
    refreshToken = '';

    // 9. Audit: the chain verifies, and an altered entry is found.
    step = 'audit';
    const verifyBefore = await admin.call<{ ok: boolean; entries: number }>('GET', '/audit/verify');
    report.auditBefore = verifyBefore;
    const tampered = await withTimeout(tamperWithAuditEntry(ctx, 5), DATABASE_TIMEOUT_MS, 'altering an audit entry');
    report.updateRefused = tampered.updateRefused;
    report.auditAfter = await withTimeout(verifyAuditLog(ctx.db), DATABASE_TIMEOUT_MS, 'verifying the audit log');
    log('audit', `${verifyBefore.entries} entries verify; after altering entry 5 with the trigger removed: ${JSON.stringify(report.auditAfter)}`);

    report.credentialSeenByAgent = received.some((text) => text.includes(apiKey));
    report.upstreamRequests = upstream.received.length;
    return report;
  } catch (error) {
    throw new Error(`The example failed in step ${step}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    // A close that times out is logged, so that it does not replace the error of a failed step.
    await withTimeout(session.close(), BROWSER_TIMEOUT_MS, 'closing the browser context').catch((error: unknown) => log('cleanup', error instanceof Error ? error.message : String(error)));
    await Promise.all([upstream.close(), callback.close(), notes.close()]);
  }
}

async function authorizeInBrowser(session: BrowserContext, callback: CallbackServer, config: oidc.Configuration, params: { scope: string; resource: string }) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: callback.url, scope: params.scope, resource: params.resource, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce });

  const page = await withTimeout(session.newPage(), BROWSER_TIMEOUT_MS, 'opening a page for the authorization request');
  await page.goto(url.href);
  if (page.url().includes('/login')) {
    await page.fill('#username', 'alice');
    await page.fill('#password', ALICE_PASSWORD);
    await Promise.all([page.waitForURL((url) => url.pathname === '/authorize'), page.click('#sign-in')]);
  }
  const consentText = (await page.textContent('main')) ?? '';
  await page.click('#allow');
  const returned = await callback.next();
  // As in the approval step: close the page only after the navigation to the redirect URI has committed and loaded.
  await page.waitForURL((current) => current.href.startsWith(callback.url), { waitUntil: 'load' });
  await closePage(page, 'the authorization page');
  return { returned, verifier, state, nonce, consentText };
}

/**
 * Closes a page within BROWSER_TIMEOUT_MS. Playwright's page.close() has no timeout: it waits
 * until Chromium reports the page gone, and Chromium can drop a close that races a navigation
 * commit (playwright-core 1.65.2 with Chromium 156 here), so an unbounded close can wait forever.
 */
async function closePage(page: Page, name: string): Promise<void> {
  await withTimeout(page.close(), BROWSER_TIMEOUT_MS, `closing ${name}`);
}

/** Waits for `work`, and fails with a message naming `operation` when it takes longer than `ms`. */
async function withTimeout<T>(work: Promise<T>, ms: number, operation: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${operation} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Calls the gateway and returns the typed error's name and code (or the status when it passed). */
async function gatewayError(agent: MandateAgent, url: string, accessToken: string, method = 'GET', body?: string, approvalId?: string): Promise<string> {
  try {
    const response = await agent.callGateway({ url, method, accessToken, ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }), ...(approvalId === undefined ? {} : { approvalId }) });
    return `passed ${response.status}`;
  } catch (error) {
    if (error instanceof UnauthorizedError) return `401 ${error.error}`;
    if (error instanceof ForbiddenError) return `403 ${error.error}`;
    throw error;
  }
}

async function rejects(call: () => Promise<unknown>, type: new (...args: never[]) => Error): Promise<boolean> {
  try {
    await call();
    return false;
  } catch (error) {
    if (error instanceof type) return true;
    throw error;
  }
}
