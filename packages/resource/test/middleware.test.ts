import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { requireAccessToken } from '../src/index.ts';
import type { AccessTokenClaims, AuthenticatedRequest } from '../src/index.ts';
import { AUDIENCE, AuthorizationServerFixture } from './authorization-server-fixture.ts';

let authorizationServer: AuthorizationServerFixture;
let resourceServer: Server;
let resourceUrl: string;
/** Claims that the handler received with the last request, or undefined if it was not reached. */
let handledClaims: AccessTokenClaims | undefined;

before(async () => {
  authorizationServer = await AuthorizationServerFixture.start();
  const guard = requireAccessToken({
    issuer: authorizationServer.issuer,
    audience: AUDIENCE,
    scopes: ['repo:read'],
  });

  // A plain node:http server that uses the middleware without `next`.
  resourceServer = createServer(async (req: AuthenticatedRequest, res) => {
    const claims = await guard(req, res);
    if (claims === undefined) {
      return;
    }
    handledClaims = req.auth;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ sub: claims.sub }));
  });
  await new Promise<void>((resolve) => resourceServer.listen(0, '127.0.0.1', resolve));
  resourceUrl = `http://127.0.0.1:${(resourceServer.address() as AddressInfo).port}/repos`;
});

after(async () => {
  await new Promise((resolve) => resourceServer.close(resolve));
  await authorizationServer.close();
});

/** The Bearer and the DPoP challenge for a request without credentials (RFC 9449 §7.1), as fetch joins them. */
// RFC 6750 §3: without a token, the challenges name the scope the resource requires.
const MISSING_TOKEN_CHALLENGES =
  `Bearer realm="${AUDIENCE}", scope="repo:read", DPoP realm="${AUDIENCE}", algs="EdDSA Ed25519 ES256 ES384 PS256 RS256", scope="repo:read"`;

function get(headers: Record<string, string> = {}, url = resourceUrl): Promise<Response> {
  handledClaims = undefined;
  return fetch(url, { headers });
}

describe('requireAccessToken', () => {
  it('passes a valid token to the handler', async () => {
    const response = await get({ authorization: `Bearer ${await authorizationServer.signAccessToken()}` });

    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { sub: 'user-42' });
    assert.equal(handledClaims?.sub, 'user-42');
    assert.deepEqual(handledClaims?.scopes, ['repo:read', 'issues:write']);
  });

  it('accepts the scheme in any case', async () => {
    const response = await get({ authorization: `bEaReR ${await authorizationServer.signAccessToken()}` });
    assert.equal(response.status, 200);
  });

  it('challenges a request without a token', async () => {
    const response = await get();

    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), MISSING_TOKEN_CHALLENGES);
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(body.error, undefined);
    assert.equal(typeof body.error_description, 'string');
    assert.equal(handledClaims, undefined);
  });

  it('challenges another scheme without an error code', async () => {
    const response = await get({ authorization: 'Basic YWdlbnQ6c2VjcmV0' });

    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), MISSING_TOKEN_CHALLENGES);
  });

  it('returns 401 for an invalid token', async () => {
    const claims = { ...authorizationServer.accessTokenClaims(), aud: 'https://other.example.test/' };
    const response = await get({ authorization: `Bearer ${await authorizationServer.signAccessToken(claims)}` });

    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get('www-authenticate'),
      `Bearer realm="${AUDIENCE}", error="invalid_token", error_description="The access token is not intended for this resource."`,
    );
    assert.deepEqual(await response.json(), {
      error: 'invalid_token',
      error_description: 'The access token is not intended for this resource.',
    });
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.equal(handledClaims, undefined);
  });

  it('returns 401 for an ID token', async () => {
    const response = await get({ authorization: `Bearer ${await authorizationServer.signIdToken()}` });

    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get('www-authenticate'),
      `Bearer realm="${AUDIENCE}", error="invalid_token", error_description="The access token is invalid."`,
    );
    assert.equal(((await response.json()) as { error: string }).error, 'invalid_token');
  });

  it('returns 403 for a missing scope', async () => {
    const claims = { ...authorizationServer.accessTokenClaims(), scope: 'issues:write' };
    const response = await get({ authorization: `Bearer ${await authorizationServer.signAccessToken(claims)}` });

    assert.equal(response.status, 403);
    assert.equal(
      response.headers.get('www-authenticate'),
      `Bearer realm="${AUDIENCE}", error="insufficient_scope", error_description="The access token lacks a required scope: repo:read.", scope="repo:read"`,
    );
    assert.deepEqual(await response.json(), {
      error: 'insufficient_scope',
      error_description: 'The access token lacks a required scope: repo:read.',
    });
    assert.equal(handledClaims, undefined);
  });

  it('rejects a token in the query string', async () => {
    const token = await authorizationServer.signAccessToken();
    const response = await get({}, `${resourceUrl}?access_token=${token}`);

    assert.equal(response.status, 400);
    const challenge = response.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer realm="[^"]+", error="invalid_request", error_description="[^"]+"$/);
    assert.equal(((await response.json()) as { error: string }).error, 'invalid_request');
    assert.equal(handledClaims, undefined);
  });

  it('rejects a query token even with a valid header', async () => {
    const token = await authorizationServer.signAccessToken();
    const response = await get({ authorization: `Bearer ${token}` }, `${resourceUrl}?access_token=${token}`);
    assert.equal(response.status, 400);
  });

  for (const [name, header] of [
    ['an empty token', 'Bearer '],
    ['the bare scheme', 'Bearer'],
    ['two tokens', 'Bearer abc def'],
    ['characters outside b64token', 'Bearer abc$def'],
  ]) {
    it(`rejects ${name} with 400 invalid_request`, async () => {
      const response = await get({ authorization: header as string });

      assert.equal(response.status, 400);
      assert.equal(
        response.headers.get('www-authenticate'),
        `Bearer realm="${AUDIENCE}", error="invalid_request", error_description="The Authorization header is not a valid Bearer or DPoP credential."`,
      );
      assert.equal(((await response.json()) as { error: string }).error, 'invalid_request');
    });
  }

  it('calls next and sets req.auth on success', async () => {
    const middleware = requireAccessToken({ issuer: authorizationServer.issuer, audience: AUDIENCE });
    const token = await authorizationServer.signAccessToken();
    const req = { url: '/repos', headers: { authorization: `Bearer ${token}` } } as AuthenticatedRequest;
    let nextCalls = 0;

    const claims = await middleware(req, {} as never, () => {
      nextCalls += 1;
    });

    assert.equal(nextCalls, 1);
    assert.equal(req.auth?.sub, 'user-42');
    assert.equal(claims, req.auth);
  });
});
