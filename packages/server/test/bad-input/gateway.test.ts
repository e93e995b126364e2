import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGatewayFixture, type GatewayFixture } from '../gateway/gateway-fixture.ts';
import { agentOwnToken } from '../gateway/world.ts';
import { assertNoUnexpectedErrors, assertResponse, hostileTokens, send, snapshot, type Expected } from './requests.ts';

interface Case extends Expected {
  name: string;
  method?: string;
  path: string;
  /** The Authorization field; the delegated token unless given, none when null. */
  authorization?: string | null;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

describe('gateway rejects hostile requests', () => {
  let gateway: GatewayFixture;

  before(async () => {
    gateway = await startGatewayFixture();
  });
  after(async () => {
    assertNoUnexpectedErrors(gateway.server);
    await gateway.stop();
  });

  test('each case is denied before the upstream and writes no approval', async () => {
    const tables = ['approvals', 'delegations', 'refresh_tokens'] as const;
    const before = await snapshot(gateway.server.ctx, [...tables]);
    const tokens = await hostileTokens(gateway.server, gateway.world.identifier, gateway.world.user.id, gateway.world.agentId);
    const own = await agentOwnToken(gateway.server, gateway.world);
    const base = `/gateway/${gateway.world.resourceName}`;

    // RFC 6750 §3: no credentials get a bare challenge; a bad token gets error="invalid_token".
    const missing: Expected = { status: 401, error: 'invalid_token', challenge: /^Bearer realm="mandate"$/ };
    const invalid: Expected = { status: 401, error: 'invalid_token', challenge: /^Bearer realm="mandate", error="invalid_token"/ };
    const malformed: Expected = { status: 400, error: 'invalid_request' };

    const cases: Case[] = [
      // The token
      { name: 'no Authorization', path: `${base}/items`, authorization: null, ...missing },
      { name: 'Basic scheme', path: `${base}/items`, authorization: 'Basic YTpi', ...missing },
      // RFC 9449 §7.1: a bearer token under the DPoP scheme has no key to check a proof against.
      { name: 'DPoP scheme, unbound token', path: `${base}/items`, authorization: `DPoP ${gateway.token}`, status: 401, error: 'invalid_token', challenge: /^DPoP realm="mandate", algs="[^"]+", error="invalid_token"/ },
      { name: 'Bearer without token', path: `${base}/items`, authorization: 'Bearer', ...missing },
      { name: 'Bearer with two tokens', path: `${base}/items`, authorization: `Bearer ${gateway.token} ${gateway.token}`, ...missing },
      { name: 'Bearer with bad characters', path: `${base}/items`, authorization: 'Bearer a"b;c', ...missing },
      { name: 'Bearer garbage', path: `${base}/items`, authorization: `Bearer ${tokens.garbage}`, ...invalid },
      { name: 'Bearer two parts', path: `${base}/items`, authorization: `Bearer ${tokens.twoParts}`, ...invalid },
      { name: 'Bearer unsigned', path: `${base}/items`, authorization: `Bearer ${tokens.unsigned}`, ...invalid },
      { name: 'Bearer alg none at+jwt', path: `${base}/items`, authorization: `Bearer ${tokens.noneTyped}`, ...invalid },
      { name: 'Bearer foreign key', path: `${base}/items`, authorization: `Bearer ${tokens.foreign}`, ...invalid },
      { name: 'Bearer typ JWT', path: `${base}/items`, authorization: `Bearer ${tokens.wrongTyp}`, ...invalid },
      { name: 'Bearer expired', path: `${base}/items`, authorization: `Bearer ${tokens.expired}`, ...invalid },
      { name: 'Bearer 8 KB long', path: `${base}/items`, authorization: `Bearer ${'a'.repeat(8000)}`, ...invalid },
      { name: 'agent\'s own token', path: `${base}/items`, authorization: `Bearer ${own}`, status: 403, error: 'access_denied' },

      // The resource name
      { name: 'resource unknown', path: '/gateway/unknown/items', status: 404, error: 'invalid_request' },
      { name: 'resource with NUL', path: '/gateway/files%00/items', ...malformed },
      { name: 'resource bad encoding', path: '/gateway/%zz/items', ...malformed },
      { name: 'resource 3000 characters', path: `/gateway/${'r'.repeat(3000)}/items`, status: 414, error: 'invalid_request' },
      { name: 'resource without path', path: `/gateway/${gateway.world.resourceName}`, status: 404, error: 'invalid_request' },

      // The path after the resource (dot segments, encoded separators, control characters)
      { name: 'encoded dot-dot', path: `${base}/items/%2e%2e/%2e%2e/secret`, ...malformed },
      { name: 'encoded slash', path: `${base}/items%2F..%2Fsecret`, ...malformed },
      { name: 'encoded backslash', path: `${base}/items%5C..%5Csecret`, ...malformed },
      { name: 'empty segment', path: `${base}//items`, ...malformed },
      { name: 'encoded NUL in path', path: `${base}/items/%00`, ...malformed },
      { name: 'encoded CRLF in path', path: `${base}/items/%0d%0aX-Injected:%201`, ...malformed },
      { name: 'bad encoding in path', path: `${base}/items/%zz`, ...malformed },
      { name: 'no action covers it', path: `${base}/admin`, status: 403, error: 'access_denied' },
      { name: 'method no action covers', method: 'PATCH', path: `${base}/items`, status: 403, error: 'access_denied' },

      // Approval header and body
      { name: 'Mandate-Approval malformed', method: 'POST', path: `${base}/send`, headers: { 'mandate-approval': '../apr' }, body: '{}', ...malformed },
      { name: 'Mandate-Approval unknown', method: 'POST', path: `${base}/send`, headers: { 'mandate-approval': 'apr_unknown' }, body: '{}', status: 403, error: 'access_denied' },
      { name: 'body over 1 MiB', method: 'POST', path: `${base}/items`, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(1024 * 1024 + 1), status: 413, error: 'invalid_request' },
    ];

    for (const entry of cases) {
      const headers: Record<string, string> = { ...entry.headers };
      if (entry.authorization !== null) headers.authorization = entry.authorization ?? `Bearer ${gateway.token}`;
      const response = await send(gateway.server, entry.method ?? 'GET', entry.path, headers, entry.body);
      assertResponse(response, entry, entry.name);
    }

    assert.equal(gateway.upstream.received.length, 0, 'nothing reached the upstream');
    const after = await snapshot(gateway.server.ctx, [...tables]);
    assert.deepEqual(after, before);
  });
});
