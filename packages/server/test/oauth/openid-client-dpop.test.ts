import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { calculateJwkThumbprint, decodeJwt, exportJWK } from 'jose';
import type { Browser } from 'playwright-core';
import { createClient } from '../../src/agents/clients.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { launchBrowser, startCallbackServer, type CallbackServer } from '../browser.ts';
import { consentInBrowser, type CodeFlow } from './code-flow.ts';

/** One request that openid-client sent, with the status and `DPoP-Nonce` of the server's response. */
interface SentRequest {
  path: string;
  hasProof: boolean;
  status: number;
  dpopNonce: string | null;
}

/**
 * The authorization code flow of openid-client 6 with PKCE and DPoP (RFC 9449 §5, §10) against
 * the real server, with a person signing in in Chromium, and then the DPoP-bound token at
 * userinfo (RFC 9449 §7). The second server requires DPoP nonces (RFC 9449 §8, §9), so
 * openid-client must retry once at the token endpoint and once at userinfo.
 */
describe('openid-client code flow with PKCE and DPoP (RFC 9449)', () => {
  let browser: Browser;
  let callback: CallbackServer;

  before(async () => {
    browser = await launchBrowser();
    callback = await startCallbackServer();
  });
  after(async () => {
    await callback.close();
    await browser.close();
  });

  for (const dpopNoncesRequired of [false, true]) {
    describe(dpopNoncesRequired ? 'with dpopNoncesRequired' : 'without nonces', () => {
      let server: TestServer;
      let world: Awaited<ReturnType<typeof seedWorld>>;
      let flow: CodeFlow;
      let sent: SentRequest[];
      /** A resource server that introspects tokens; agents and applications see only their own, so it is an admin client. */
      let resourceServer: client.Configuration;

      before(async () => {
        server = await startTestServer({ dpopNoncesRequired });
        world = await seedWorld(server.ctx, { redirectUri: callback.url });
        const options = { execute: [client.allowInsecureRequests] };
        const config = await client.discovery(new URL(server.issuer), world.agent.client.client_id, {}, client.ClientSecretBasic(world.agent.clientSecret ?? ''), options);
        sent = [];
        config[client.customFetch] = async (url, init) => {
          // The cast bridges typings only: FetchBody allows any Uint8Array, fetch's BodyInit only one backed by an ArrayBuffer.
          const response = await fetch(url, init as RequestInit);
          sent.push({ path: new URL(url).pathname, hasProof: init.headers.dpop !== undefined, status: response.status, dpopNonce: response.headers.get('dpop-nonce') });
          return response;
        };
        flow = { browser, callback, config, resource: world.resource.identifier };

        const registered = await createClient(server.ctx, { kind: 'admin', name: 'Mail API' });
        resourceServer = await client.discovery(new URL(server.issuer), registered.client.client_id, {}, client.ClientSecretBasic(registered.clientSecret ?? ''), options);
      });
      after(async () => server.stop());

      const requestsTo = (path: string) => sent.filter((request) => request.path === path);

      test('bound token reaches userinfo', async () => {
        const keyPair = await client.randomDPoPKeyPair('ES256');
        const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey), 'sha256');
        const dpop = client.getDPoPHandle(flow.config, keyPair);
        assert.equal(await dpop.calculateThumbprint(), jkt);

        // RFC 9449 §10: dpop_jkt binds the code to the key. RFC 7636: PKCE with S256.
        const verifier = client.randomPKCECodeVerifier();
        const state = client.randomState();
        const url = client.buildAuthorizationUrl(flow.config, {
          redirect_uri: callback.url,
          scope: 'openid mail.read',
          code_challenge: await client.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
          resource: flow.resource,
          dpop_jkt: jkt,
        });
        const returned = await consentInBrowser(flow, url, 'alice');
        const tokens = await client.authorizationCodeGrant(flow.config, returned, { pkceCodeVerifier: verifier, expectedState: state }, undefined, { DPoP: dpop });

        // RFC 9449 §5: token_type DPoP (openid-client lower-cases it) and cnf.jkt of the proof's key.
        assert.equal(tokens.token_type, 'dpop');
        assert.deepEqual(decodeJwt(tokens.access_token).cnf, { jkt });
        const tokenRequests = requestsTo('/token');
        assert.deepEqual(tokenRequests.map((request) => request.status), dpopNoncesRequired ? [400, 200] : [200]);
        assert.ok(tokenRequests.every((request) => request.hasProof));

        // RFC 9449 §6.2: introspection shows the binding to the resource server.
        const introspection = await client.tokenIntrospection(resourceServer, tokens.access_token);
        assert.equal(introspection.active, true);
        assert.equal(introspection.token_type, 'DPoP');
        assert.deepEqual(introspection.cnf, { jkt });

        // A new handle has no nonce yet, so with dpopNoncesRequired userinfo first returns use_dpop_nonce.
        const userinfoHandle = client.getDPoPHandle(flow.config, keyPair);
        const claims = await client.fetchUserInfo(flow.config, tokens.access_token, world.alice.id, { DPoP: userinfoHandle });
        assert.deepEqual({ ...claims }, { sub: world.alice.id, name: 'Alice Example', preferred_username: 'alice' });
        const userinfoRequests = requestsTo('/userinfo');
        assert.deepEqual(userinfoRequests.map((request) => request.status), dpopNoncesRequired ? [401, 200] : [200]);
        assert.ok(userinfoRequests.every((request) => request.hasProof));
        // RFC 9449 §9: the nonce server sends a fresh nonce with the claims as well.
        if (dpopNoncesRequired) assert.match(userinfoRequests.at(-1)?.dpopNonce ?? '', /^\d+\.[A-Za-z0-9_-]{43}$/);
        else assert.equal(userinfoRequests.at(-1)?.dpopNonce, null);

        // RFC 9449 §7.2: without its proof the bound token is refused as a bearer token.
        await assert.rejects(client.fetchUserInfo(flow.config, tokens.access_token, world.alice.id), (error: client.WWWAuthenticateChallengeError) => {
          assert.equal(error.code, 'OAUTH_WWW_AUTHENTICATE_CHALLENGE');
          assert.equal(error.cause[0]?.scheme, 'dpop');
          assert.equal(error.cause[0]?.parameters.error, 'invalid_token');
          return true;
        });
      });

      test('refreshed token stays bound', async () => {
        const keyPair = await client.randomDPoPKeyPair('EdDSA');
        const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey), 'sha256');
        const dpop = client.getDPoPHandle(flow.config, keyPair);

        const verifier = client.randomPKCECodeVerifier();
        const state = client.randomState();
        const url = client.buildAuthorizationUrl(flow.config, {
          redirect_uri: callback.url,
          scope: 'openid mail.read',
          code_challenge: await client.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
          resource: flow.resource,
        });
        const returned = await consentInBrowser(flow, url, 'bob');
        const tokens = await client.authorizationCodeGrant(flow.config, returned, { pkceCodeVerifier: verifier, expectedState: state }, undefined, { DPoP: dpop });
        const refreshed = await client.refreshTokenGrant(flow.config, tokens.refresh_token ?? '', undefined, { DPoP: dpop });

        assert.equal(refreshed.token_type, 'dpop');
        assert.deepEqual(decodeJwt(refreshed.access_token).cnf, { jkt });
        const claims = await client.fetchUserInfo(flow.config, refreshed.access_token, world.bob.id, { DPoP: dpop });
        assert.equal(claims.preferred_username, 'bob');
      });
    });
  }
});
