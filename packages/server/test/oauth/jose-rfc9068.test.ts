import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { issueIdToken } from '../../src/oauth/id-token.ts';
import { postForm } from './code-flow.ts';

// jose's own jwtVerify, configured as RFC 9068 §4 requires of a resource server: the published JWKS,
// the exact issuer, its own audience, and `typ` at+jwt.
describe('jose jwtVerify as an RFC 9068 resource server', () => {
  let server: TestServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let verify: (token: string) => ReturnType<typeof jwtVerify>;

  before(async () => {
    server = await startTestServer();
    world = await seedWorld(server.ctx);
    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
    verify = (token) => jwtVerify(token, jwks, { issuer: server.issuer, audience: world.resource.identifier, typ: 'at+jwt', requiredClaims: ['sub', 'client_id', 'iat', 'exp', 'jti'] });
  });
  after(() => server.stop());

  test('access token is accepted', async () => {
    const issued = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: world.resource.identifier }, { clientId: world.agent.client.client_id, secret: world.agent.clientSecret ?? '' });
    assert.equal(issued.status, 200);

    const { payload, protectedHeader } = await verify(String(issued.json?.access_token));
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.client_id, world.agent.client.client_id);
    assert.equal(payload.aud, world.resource.identifier);
  });

  test('ID token is rejected by typ', async () => {
    const idToken = await issueIdToken(server.ctx, { user: world.alice, clientId: world.agent.client.client_id, nonce: null, authTime: Math.floor(Date.now() / 1000) });
    await assert.rejects(verify(idToken), (error: unknown) => error instanceof errors.JWTClaimValidationFailed && error.claim === 'typ');
  });
});
