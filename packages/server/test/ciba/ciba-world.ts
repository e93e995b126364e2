import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PASSWORD, type World } from '../gateway/world.ts';
import type { TestServer } from '../harness.ts';

export const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';

/** An OAuth response as the tests check it: status, JSON body and headers. */
export interface JsonResponse {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

export function basic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function postForm(server: TestServer, path: string, params: Record<string, string>, authorization?: string): Promise<JsonResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (authorization !== undefined) headers.authorization = authorization;
  const response = await fetch(`${server.issuer}${path}`, { method: 'POST', headers, body: new URLSearchParams(params) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, headers: response.headers };
}

/** Sends a backchannel authentication request (CIBA Core 1.0 §7.1) as the world's agent, with client_secret_basic. */
export async function backchannelRequest(server: TestServer, world: Pick<World, 'agentId' | 'agentSecret'>, params: Record<string, string>): Promise<JsonResponse> {
  return postForm(server, '/bc-authorize', params, basic(world.agentId, world.agentSecret));
}

/** Sends a CIBA token request (CIBA Core 1.0 §10.1) as the world's agent. */
export async function cibaTokenRequest(server: TestServer, world: Pick<World, 'agentId' | 'agentSecret'>, authReqId: string): Promise<JsonResponse> {
  return postForm(server, '/token', { grant_type: CIBA_GRANT, auth_req_id: authReqId }, basic(world.agentId, world.agentSecret));
}

/** Builds the `authorization_details` parameter for one `mandate_action` of the world's resource. */
export function actionDetail(world: World, action: string, args?: Record<string, unknown>): string {
  return JSON.stringify([{ type: 'mandate_action', resource: world.identifier, action, ...(args === undefined ? {} : { arguments: args }) }]);
}

/** Asks for the `send` action with exact arguments and returns the successful response body. */
export async function requestSend(server: TestServer, world: World, args: Record<string, unknown> | undefined, extra: Record<string, string> = {}): Promise<{ auth_req_id: string; expires_in: number; interval: number }> {
  const response = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: actionDetail(world, 'send', args), ...extra });
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body as { auth_req_id: string; expires_in: number; interval: number };
}

export function assertOAuthError(response: JsonResponse, status: number, error: string, message?: string): void {
  assert.equal(response.status, status, `${message ?? error}: ${JSON.stringify(response.body)}`);
  assert.equal(response.body.error, error, message);
  assert.equal(typeof response.body.error_description, 'string');
}

/** A browser session without a browser: the cookies of a real sign-in at /login. */
export interface Session {
  cookie: string;
}

/** Signs the person in through the real sign-in form and returns the session cookies. */
export async function signInWithFetch(server: TestServer, username: string): Promise<Session> {
  const login = await fetch(`${server.issuer}/login`);
  const csrfCookie = login.headers.getSetCookie().map((field) => field.split(';')[0]).join('; ');
  const loginCsrf = /name="_csrf" value="([^"]+)"/.exec(await login.text())?.[1] ?? '';
  const signedIn = await fetch(`${server.issuer}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie },
    body: new URLSearchParams({ _csrf: loginCsrf, username, password: PASSWORD }),
  });
  assert.equal(signedIn.status, 303, 'the sign-in succeeds');
  return { cookie: `${csrfCookie}; ${signedIn.headers.getSetCookie().map((field) => field.split(';')[0]).join('; ')}` };
}

/** Finds the id of a CIBA request in the person's inbox by its binding message. */
export async function cibaRequestId(server: TestServer, session: Session, bindingMessage: string): Promise<string> {
  const inbox = await fetch(`${server.issuer}/approvals`, { headers: { cookie: session.cookie } });
  const html = await inbox.text();
  const item = new RegExp(`<li class="approval backchannel" id="approval-(cib_[A-Za-z0-9_-]+)">(?:(?!</li>).)*${escapeRegExp(bindingMessage)}`, 's').exec(html);
  assert.ok(item?.[1] !== undefined, `the inbox lists the request with binding message ${bindingMessage}`);
  return item[1];
}

/** Opens the request's page and posts the decision with the page's CSRF token; returns the decision response. */
export async function decideOnPage(server: TestServer, session: Session, requestId: string, decision: 'approve' | 'deny'): Promise<Response> {
  const page = await fetch(`${server.issuer}/approvals/ciba/${requestId}`, { headers: { cookie: session.cookie } });
  assert.equal(page.status, 200);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1];
  assert.ok(csrf !== undefined, 'the page has a CSRF token');
  return fetch(`${server.issuer}/approvals/ciba/${requestId}/${decision}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf }),
  });
}

/** Signs the person in, finds the request by its binding message in the inbox, and decides it on its page. */
export async function personDecides(server: TestServer, world: World, bindingMessage: string, decision: 'approve' | 'deny'): Promise<string> {
  const session = await signInWithFetch(server, world.user.username);
  const requestId = await cibaRequestId(server, session, bindingMessage);
  const response = await decideOnPage(server, session, requestId, decision);
  assert.equal(response.status, 303, `the ${decision} form is accepted`);
  assert.equal(response.headers.get('location'), `/approvals/ciba/${requestId}`);
  return requestId;
}

/** One ping notification as the agent's endpoint received it. */
export interface Notification {
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

/**
 * The agent's notification endpoint on loopback (CIBA Core 1.0 §10.2). It records every POST and
 * responds to each with the next status of its plan (204 once the plan runs out), or keeps it open.
 */
export class NotificationReceiver {
  readonly received: Notification[] = [];
  plan: (number | 'hang')[] = [];
  url = '';
  readonly #held: ServerResponse[] = [];
  #server: Server | undefined;
  #waiters: (() => void)[] = [];

  async start(): Promise<void> {
    this.#server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        this.received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8'), receivedAt: Date.now() });
        const step = this.plan[this.received.length - 1] ?? 204;
        if (step === 'hang') this.#held.push(response);
        else response.writeHead(step).end();
        for (const wake of this.#waiters.splice(0)) wake();
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/ciba/notify`;
  }

  /** Waits until `count` notifications have arrived, or fails after `timeoutMs`. */
  async waitFor(count: number, timeoutMs = 10_000): Promise<Notification[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      const remaining = deadline - Date.now();
      assert.ok(remaining > 0, `expected ${count} notifications, got ${this.received.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received.slice(0, count);
  }

  async close(): Promise<void> {
    for (const response of this.#held) response.destroy();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server === undefined ? resolve() : this.#server.close(() => resolve())));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
