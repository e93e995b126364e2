import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { SignJWT, UnsecuredJWT, generateKeyPair } from 'jose';
import type { ServerContext } from '../../src/context.ts';
import type { Database } from '../../src/store/schema.ts';
import { nowSeconds } from '../../src/store/ids.ts';
import type { TestServer } from '../harness.ts';
import { PASSWORD } from '../fixtures.ts';

export const FORM = 'application/x-www-form-urlencoded';
export const JSON_TYPE = /^application\/json; charset=utf-8$/;
export const PROBLEM_TYPE = /^application\/problem\+json; charset=utf-8$/;
export const HTML_TYPE = /^text\/html; charset=utf-8$/;

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/**
 * Sends one request with the path and headers exactly as given. `fetch` would normalize the
 * path and refuse CR/LF in header values, which these tests need to send.
 */
export function send(server: TestServer, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<RawResponse> {
  const url = new URL(server.issuer);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: url.hostname, port: Number(url.port), method, path, headers, insecureHTTPParser: true }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** Fails when a response body shows internals: stack frames, source paths or an error's name. */
export function assertNoLeak(response: RawResponse, label: string): void {
  assert.doesNotMatch(response.text, /^\s*at \S/m, `${label}: stack frame in body`);
  assert.doesNotMatch(response.text, /\bat [\w.<>]+ \(/, `${label}: stack frame in body`);
  assert.doesNotMatch(response.text, /(\/[\w.-]+)+\.(ts|tsx|js|mjs|cjs)\b/, `${label}: source path in body`);
  assert.doesNotMatch(response.text, /\bError:/, `${label}: error name in body`);
  assert.doesNotMatch(response.text, /node_modules/, `${label}: source path in body`);
}

/** An expected outcome of one hostile request. */
export interface Expected {
  status: number;
  /** RFC 6749 `error` value of a JSON body. */
  error?: string;
  /** RFC 9457 `type` of a problem body. */
  problemType?: string;
  contentType?: RegExp;
  /** The `WWW-Authenticate` field, or null when there must be none. */
  challenge?: RegExp | null;
  location?: RegExp;
}

export function assertResponse(response: RawResponse, expected: Expected, label: string): void {
  assert.equal(response.status, expected.status, `${label}: status (body ${response.text.slice(0, 300)})`);
  if (expected.contentType !== undefined) assert.match(response.headers['content-type'] ?? '', expected.contentType, `${label}: content type`);

  if (expected.error !== undefined) {
    assert.match(response.headers['content-type'] ?? '', JSON_TYPE, `${label}: content type`);
    const body = JSON.parse(response.text) as Record<string, unknown>;
    assert.equal(body.error, expected.error, `${label}: error (${String(body.error_description)})`);
    assert.equal(typeof body.error_description, 'string', `${label}: error_description`);
  }
  if (expected.problemType !== undefined) {
    assert.match(response.headers['content-type'] ?? '', PROBLEM_TYPE, `${label}: content type`);
    const body = JSON.parse(response.text) as Record<string, unknown>;
    assert.equal(body.type, expected.problemType, `${label}: problem type (${String(body.detail)})`);
    assert.equal(body.status, expected.status, `${label}: problem status`);
    assert.equal(typeof body.detail, 'string', `${label}: problem detail`);
  }

  if (expected.challenge === null) assert.equal(response.headers['www-authenticate'], undefined, `${label}: unexpected WWW-Authenticate`);
  else if (expected.challenge !== undefined) assert.match(response.headers['www-authenticate'] ?? '', expected.challenge, `${label}: WWW-Authenticate`);
  if (expected.location !== undefined) assert.match(response.headers.location ?? '', expected.location, `${label}: Location`);

  assert.notEqual(response.status, 500, `${label}: server error`);
  assertNoLeak(response, label);
}

/** Fails when the server logged an unexpected error (the 500 path of handleError) during the suite. */
export function assertNoUnexpectedErrors(server: TestServer): void {
  const unexpected = server.logs.filter((line) => line.includes('"msg":"unexpected error"'));
  assert.deepEqual(unexpected, [], 'the server logged unexpected errors');
}

export function basicAuth(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

export async function countRows(ctx: ServerContext, table: keyof Database): Promise<number> {
  const row = await ctx.db.selectFrom(table).select((eb) => eb.fn.countAll().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Row counts of several tables, to show that a failed request wrote nothing. */
export async function snapshot(ctx: ServerContext, tables: Array<keyof Database>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of tables) counts[table] = await countRows(ctx, table);
  return counts;
}

/** A browser session: the CSRF cookie, the session cookie after sign-in, and a form token. */
export interface PageSession {
  cookie: string;
  csrf: string;
}

/** Fetches the sign-in page for a CSRF token and signs in with the form, as a browser would. */
export async function signIn(server: TestServer, username: string): Promise<PageSession> {
  const page = await fetch(`${server.url}/login`);
  const csrfCookie = page.headers.getSetCookie().map((field) => field.split(';')[0]).join('; ');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1];
  assert.ok(csrf !== undefined, 'the sign-in page has a CSRF token');

  const response = await fetch(`${server.url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': FORM, cookie: csrfCookie },
    body: new URLSearchParams({ _csrf: csrf, username, password: PASSWORD }),
  });
  assert.equal(response.status, 303, 'sign-in succeeds');
  const sessionCookie = response.headers.getSetCookie().map((field) => field.split(';')[0]).join('; ');
  return { cookie: `${csrfCookie}; ${sessionCookie}`, csrf };
}

/** Access tokens that must be rejected: unsigned, signed by a stranger, with the wrong `typ`, expired. */
export async function hostileTokens(server: TestServer, audience: string, subject: string, clientId: string) {
  const now = nowSeconds();
  const claims = { iss: server.issuer, sub: subject, aud: audience, client_id: clientId, scope: 'mail.read', jti: 'at_hostile', tenant: 'default' };

  const unsigned = new UnsecuredJWT(claims).setIssuedAt(now).setExpirationTime(now + 600).encode();
  // `alg: none` with the access token `typ`, as an attacker would send it.
  const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
  const noneTyped = `${header}.${unsigned.split('.')[1] ?? ''}.`;

  const stranger = await generateKeyPair('EdDSA');
  const foreign = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: server.ctx.keys.accessToken.kid }).setIssuedAt(now).setExpirationTime(now + 600).sign(stranger.privateKey);

  const key = server.ctx.keys.accessToken;
  const wrongTyp = await new SignJWT(claims).setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid }).setIssuedAt(now).setExpirationTime(now + 600).sign(key.privateKey);
  const expired = await new SignJWT(claims).setProtectedHeader({ alg: key.alg, typ: 'at+jwt', kid: key.kid }).setIssuedAt(now - 1200).setExpirationTime(now - 600).sign(key.privateKey);

  return { unsigned, noneTyped, foreign, wrongTyp, expired, garbage: 'not.a.jwt', twoParts: 'eyJhbGciOiJFZERTQSJ9.e30' };
}
