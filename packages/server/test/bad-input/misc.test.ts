import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { issueAccessToken } from '../../src/oauth/access-token.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { assertNoLeak, assertNoUnexpectedErrors, assertResponse, hostileTokens, send, type Expected } from './requests.ts';

interface Case extends Expected {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
}

/** Writes bytes to the server's socket as they are, for requests that no HTTP client would send. */
function sendBytes(server: TestServer, bytes: string): Promise<string> {
  const url = new URL(server.issuer);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
}

describe('metadata, JWKS, userinfo and static routes reject hostile requests', () => {
  let server: TestServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;

  before(async () => {
    server = await startTestServer();
    world = await seedWorld(server.ctx);
  });
  after(async () => {
    assertNoUnexpectedErrors(server);
    await server.stop();
  });

  test('each case gets its error', async () => {
    const tokens = await hostileTokens(server, `${server.issuer}/userinfo`, world.alice.id, world.app.client.client_id);
    const otherAudience = (await issueAccessToken(server.ctx, { subject: world.alice.id, clientId: world.app.client.client_id, audience: world.resource.identifier, scope: ['mail.read'], lifetimeSeconds: 600 })).token;
    const notFound: Expected = { status: 404, error: 'invalid_request' };
    // RFC 6750 §3: a request without a token gets a challenge without an error code.
    const missing: Expected = { status: 401, error: 'invalid_token', challenge: /^Bearer realm="mandate"$/ };
    const invalid: Expected = { status: 401, error: 'invalid_token', challenge: /^Bearer realm="mandate", error="invalid_token", error_description="/ };
    const ok = (contentType: RegExp): Expected => ({ status: 200, contentType });

    const cases: Case[] = [
      { name: 'metadata junk query', method: 'GET', path: '/.well-known/oauth-authorization-server?x=%zz&x=%E0', ...ok(/^application\/json/) },
      { name: 'metadata NUL in query', method: 'GET', path: '/.well-known/oauth-authorization-server?x=%00', status: 400, error: 'invalid_request' },
      { name: 'metadata by POST', method: 'POST', path: '/.well-known/oauth-authorization-server', ...notFound },
      { name: 'metadata bad path encoding', method: 'GET', path: '/.well-known/oauth-authorization-server%zz', status: 400, error: 'invalid_request' },
      { name: 'metadata extra segment', method: 'GET', path: '/.well-known/oauth-authorization-server/x', ...notFound },
      { name: 'OIDC discovery by DELETE', method: 'DELETE', path: '/.well-known/openid-configuration', ...notFound },
      { name: 'OIDC discovery junk query', method: 'GET', path: '/.well-known/openid-configuration?%zz=%zz', ...ok(/^application\/json/) },
      { name: 'JWKS by POST', method: 'POST', path: '/jwks', ...notFound },
      { name: 'JWKS junk query', method: 'GET', path: '/jwks?kid=%zz', ...ok(/^application\/jwk-set\+json/) },
      { name: 'stylesheet by POST', method: 'POST', path: '/static/mandate.css', ...notFound },
      { name: 'stylesheet traversal', method: 'GET', path: '/static/..%2F..%2Fpackage.json', ...notFound },
      { name: 'stylesheet with NUL', method: 'GET', path: '/static/mandate.css%00.js', status: 400, error: 'invalid_request' },
      { name: 'unknown route', method: 'GET', path: '/nothing', ...notFound },
      { name: 'unknown route bad encoding', method: 'GET', path: '/%zz', status: 400, error: 'invalid_request' },
      { name: 'unknown method', method: 'PROPFIND', path: '/token', ...notFound },
      { name: 'userinfo no token', method: 'GET', path: '/userinfo', ...missing },
      { name: 'userinfo Basic', method: 'GET', path: '/userinfo', headers: { authorization: 'Basic YTpi' }, ...missing },
      { name: 'userinfo empty Bearer', method: 'GET', path: '/userinfo', headers: { authorization: 'Bearer ' }, ...missing },
      { name: 'userinfo garbage', method: 'GET', path: '/userinfo', headers: { authorization: `Bearer ${tokens.garbage}` }, ...invalid },
      { name: 'userinfo unsigned', method: 'GET', path: '/userinfo', headers: { authorization: `Bearer ${tokens.unsigned}` }, ...invalid },
      { name: 'userinfo alg none at+jwt', method: 'GET', path: '/userinfo', headers: { authorization: `Bearer ${tokens.noneTyped}` }, ...invalid },
      { name: 'userinfo foreign key', method: 'GET', path: '/userinfo', headers: { authorization: `Bearer ${tokens.foreign}` }, ...invalid },
      { name: 'userinfo typ JWT', method: 'GET', path: '/userinfo', headers: { authorization: `Bearer ${tokens.wrongTyp}` }, ...invalid },
      { name: 'userinfo expired', method: 'GET', path: '/userinfo', headers: { authorization: `Bearer ${tokens.expired}` }, ...invalid },
      { name: 'userinfo other audience', method: 'GET', path: '/userinfo', headers: { authorization: `Bearer ${otherAudience}` }, ...invalid },
      { name: 'userinfo 8 KB token', method: 'GET', path: '/userinfo', headers: { authorization: `Bearer ${'a'.repeat(8000)}` }, ...invalid },
      // OIDC Core §5.3.1: userinfo answers POST as well as GET.
      { name: 'userinfo POST garbage', method: 'POST', path: '/userinfo', headers: { authorization: `Bearer ${tokens.garbage}` }, ...invalid },
    ];

    for (const entry of cases) {
      const response = await send(server, entry.method, entry.path, entry.headers);
      assertResponse(response, entry, entry.name);
    }
  });

  test('requests that break HTTP framing get a bare 400', async () => {
    const host = new URL(server.issuer).host;
    const requests: Array<[string, string]> = [
      ['CR in the request target', `GET /login\rX HTTP/1.1\r\nHost: ${host}\r\n\r\n`],
      ['LF inside a header value', `GET /login HTTP/1.1\r\nHost: ${host}\r\nX-Test: a\nb\r\n\r\n`],
      ['NUL in a header value', `GET /userinfo HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer a\u0000b\r\n\r\n`],
      ['header without a colon', `GET /token HTTP/1.1\r\nHost: ${host}\r\nBroken\r\n\r\n`],
      ['Content-Length that is not a number', `POST /token HTTP/1.1\r\nHost: ${host}\r\nContent-Length: abc\r\n\r\n`],
      ['two different Content-Length fields', `POST /token HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`],
    ];
    for (const [name, bytes] of requests) {
      const response = await sendBytes(server, bytes);
      assert.match(response, /^HTTP\/1\.1 400 /, `${name}: status line`);
      assertNoLeak({ status: 400, headers: {}, text: response }, name);
    }
  });
});
