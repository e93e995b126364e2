import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { decodeJwt } from 'jose';
import { startTestServer, type TestServer } from '../harness.ts';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE, UPSTREAM_CREDENTIAL, createWorld, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { createDelegation } from '../../src/oauth/delegation.ts';
import { issueAccessToken } from '../../src/oauth/access-token.ts';

// oauth4webapi (panva's client library) runs the RFC 9449 §8 nonce flow against the real
// server: the server rejects the first request with use_dpop_nonce, the library keeps the nonce
// from the DPoP-Nonce header, and the retry carries it.
describe('DPoP nonce flow with oauth4webapi', () => {
  let server: TestServer;
  let upstream: Upstream;
  let world: World;
  let as: oauth.AuthorizationServer;
  const insecure = { [oauth.allowInsecureRequests]: true };

  before(async () => {
    server = await startTestServer({ dpopNoncesRequired: true });
    upstream = await startUpstream();
    world = await createWorld(server, upstream.url);
    const issuer = new URL(server.issuer);
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
  });
  after(async () => {
    await server.stop();
    await upstream.close();
  });

  /** Sends a request once, and once more when the server requires a DPoP nonce. */
  async function withNonceRetry<T>(attempt: () => Promise<T>): Promise<{ result: T; retried: boolean }> {
    try {
      return { result: await attempt(), retried: false };
    } catch (error) {
      if (!oauth.isDPoPNonceError(error)) throw error;
      return { result: await attempt(), retried: true };
    }
  }

  test('token exchange and gateway call', async () => {
    assert.deepEqual(as.dpop_signing_alg_values_supported?.includes('ES256'), true);

    const client: oauth.Client = { client_id: world.agentId };
    const clientAuth = oauth.ClientSecretBasic(world.agentSecret);
    const keyPair = await oauth.generateKeyPair('ES256');
    const DPoP = oauth.DPoP(client, keyPair);

    await createDelegation(server.ctx, { userId: world.user.id, clientId: world.agentId, resourceId: world.resourceId, scope: ['read'], source: 'consent' });
    const subject = await issueAccessToken(server.ctx, { subject: world.user.id, clientId: world.applicationId, audience: world.identifier, scope: ['read'], lifetimeSeconds: 600 });
    const parameters = { subject_token: subject.token, subject_token_type: ACCESS_TOKEN_TYPE, resource: world.identifier, scope: 'read' };

    const exchanged = await withNonceRetry(async () => {
      const response = await oauth.genericTokenEndpointRequest(as, client, clientAuth, TOKEN_EXCHANGE, parameters, { DPoP, ...insecure });
      return oauth.processGenericTokenEndpointResponse(as, client, response);
    });
    assert.equal(exchanged.retried, true);
    assert.equal(exchanged.result.token_type, 'dpop');
    const claims = decodeJwt(exchanged.result.access_token) as { cnf?: { jkt?: string } };
    assert.equal(typeof claims.cnf?.jkt, 'string');

    // The nonce from the token endpoint is valid at the gateway too, so this call needs no retry.
    const url = new URL(`${server.issuer}/gateway/${world.resourceName}/items/3`);
    const called = await withNonceRetry(() => oauth.protectedResourceRequest(exchanged.result.access_token, 'GET', url, new Headers(), null, { DPoP, ...insecure }));
    assert.equal(called.result.status, 200);
    assert.equal(called.retried, false);
    assert.equal(upstream.received.at(-1)?.headers.authorization, `Bearer ${UPSTREAM_CREDENTIAL}`);
  });
});
