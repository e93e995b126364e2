import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { Browser } from 'playwright-core';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { launchBrowser, startCallbackServer, type CallbackServer } from '../browser.ts';
import { consentInBrowser, postForm } from '../oauth/code-flow.ts';
import { basicAuthorization, createProof, generateDpopKey, type DpopKey } from './proofs.ts';

const ALGS = 'EdDSA Ed25519 ES256 ES384 PS256 RS256';
const NONCE_FORMAT = /^\d+\.[A-Za-z0-9_-]{43}$/;

/** Returns the exact challenge that a DPoP error at userinfo carries (RFC 9449 §7.1). */
function dpopChallenge(error: string, description: string): string {
  return `DPoP realm="mandate", algs="${ALGS}", error="${error}", error_description="${description.replace(/["\\]/g, '')}"`;
}

/** A Mandate server with the seeded world and a DPoP-bound `openid` token that alice granted to the agent in the browser. */
interface UserinfoWorld {
  server: TestServer;
  world: Awaited<ReturnType<typeof seedWorld>>;
  key: DpopKey;
  token: string;
  userinfoUrl: string;
}

/**
 * Starts a server and runs the code flow with PKCE and DPoP through the real consent page, with
 * openid-client and an ES256 key from jose, so the test can also sign its own proofs with it.
 */
async function startUserinfoWorld(browser: Browser, callback: CallbackServer, dpopNoncesRequired: boolean): Promise<UserinfoWorld> {
  const server = await startTestServer({ dpopNoncesRequired });
  const world = await seedWorld(server.ctx, { redirectUri: callback.url });
  const config = await client.discovery(new URL(server.issuer), world.agent.client.client_id, {}, client.ClientSecretBasic(world.agent.clientSecret ?? ''), { execute: [client.allowInsecureRequests] });

  const keyPair = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = await exportJWK(keyPair.publicKey);
  const key: DpopKey = { privateKey: keyPair.privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256'), alg: 'ES256' };

  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback.url,
    scope: 'openid mail.read',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    resource: world.resource.identifier,
    dpop_jkt: key.jkt,
  });
  const returned = await consentInBrowser({ browser, callback, config, resource: world.resource.identifier }, url, 'alice');
  const tokens = await client.authorizationCodeGrant(config, returned, { pkceCodeVerifier: verifier, expectedState: state }, undefined, { DPoP: client.getDPoPHandle(config, keyPair) });
  assert.equal(tokens.token_type, 'dpop');

  return { server, world, key, token: tokens.access_token, userinfoUrl: `${server.issuer}/userinfo` };
}

/** Calls userinfo with the given `Authorization` field and `DPoP` fields (several for a repeated header). */
async function callUserinfo(url: string, authorization: string, proof: string | string[] | undefined, method = 'GET'): Promise<Response> {
  const headers = new Headers({ authorization });
  for (const value of typeof proof === 'string' ? [proof] : (proof ?? [])) headers.append('dpop', value);
  return fetch(url, { method, headers });
}

// One browser and one redirect endpoint serve both suites.
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

describe('DPoP-bound tokens at userinfo (RFC 9449 §4.3, §7)', () => {
  let state: UserinfoWorld;

  before(async () => {
    state = await startUserinfoWorld(browser, callback, false);
  });
  after(async () => state.server.stop());

  const proofFor = (options: Partial<Parameters<typeof createProof>[1]> = {}) => createProof(state.key, { htm: 'GET', htu: state.userinfoUrl, accessToken: state.token, ...options });

  async function assertRejected(response: Response, error: string, description: string | RegExp): Promise<void> {
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(response.status, 401);
    assert.equal(body.error, error);
    if (typeof description === 'string') {
      assert.equal(body.error_description, description);
      assert.equal(response.headers.get('www-authenticate'), dpopChallenge(error, description));
    } else {
      assert.match(String(body.error_description), description);
      assert.ok((response.headers.get('www-authenticate') ?? '').startsWith(`DPoP realm="mandate", algs="${ALGS}", error="${error}", `));
    }
    assert.equal(body.sub, undefined);
  }

  const assertProofRejected = async (proof: string | string[] | undefined, description: string | RegExp) => assertRejected(await callUserinfo(state.userinfoUrl, `DPoP ${state.token}`, proof), 'invalid_dpop_proof', description);

  test('bound token with a valid proof reads the claims', async () => {
    const response = await callUserinfo(state.userinfoUrl, `DPoP ${state.token}`, await proofFor());
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { sub: state.world.alice.id, name: 'Alice Example', preferred_username: 'alice' });
    assert.equal(response.headers.get('dpop-nonce'), null);

    // OIDC Core §5.3.1: POST works as well, with htm POST. The query is not part of htu.
    const posted = await callUserinfo(`${state.userinfoUrl}?ignored=1`, `DPoP ${state.token}`, await proofFor({ htm: 'POST' }), 'POST');
    assert.equal(posted.status, 200);
  });

  test('bound token under Bearer is rejected', async () => {
    const response = await callUserinfo(state.userinfoUrl, `Bearer ${state.token}`, await proofFor());
    await assertRejected(response, 'invalid_token', 'The access token is bound to a DPoP key; send it as "Authorization: DPoP <token>" with a DPoP proof.');
  });

  test('unbound token under DPoP is rejected', async () => {
    const issued = await postForm(`${state.server.issuer}/token`, { grant_type: 'client_credentials', resource: state.world.resource.identifier, scope: 'mail.read' }, { clientId: state.world.agent.client.client_id, secret: state.world.agent.clientSecret ?? '' });
    assert.equal(issued.json?.token_type, 'Bearer');
    const bearer = String(issued.json?.access_token);
    const response = await callUserinfo(state.userinfoUrl, `DPoP ${bearer}`, await proofFor({ accessToken: bearer }));
    await assertRejected(response, 'invalid_token', 'The access token is not bound to a DPoP key; send it as "Authorization: Bearer <token>".');
  });

  test('bound token without openid keeps the DPoP challenge', async () => {
    const key = await generateDpopKey();
    const tokenUrl = `${state.server.issuer}/token`;
    const issued = await fetch(tokenUrl, {
      method: 'POST',
      headers: { authorization: basicAuthorization(state.world.agent.client.client_id, state.world.agent.clientSecret ?? ''), 'content-type': 'application/x-www-form-urlencoded', dpop: await createProof(key, { htm: 'POST', htu: tokenUrl }) },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: state.world.resource.identifier, scope: 'mail.read' }),
    });
    const token = String(((await issued.json()) as Record<string, unknown>).access_token);

    const response = await callUserinfo(state.userinfoUrl, `DPoP ${token}`, await createProof(key, { htm: 'GET', htu: state.userinfoUrl, accessToken: token }));
    assert.equal(response.status, 403);
    assert.equal(((await response.json()) as Record<string, unknown>).error, 'insufficient_scope');
    assert.equal(response.headers.get('www-authenticate'), `DPoP algs="${ALGS}", realm="mandate", error="insufficient_scope", error_description="The access token was not issued for an OpenID Connect request (scope openid).", scope="openid"`);
  });

  test('step 1: missing proof and two DPoP headers', async () => {
    await assertProofRejected(undefined, 'The request has no DPoP header. Send a DPoP proof in the DPoP header.');
    await assertProofRejected([await proofFor(), await proofFor()], 'The request must have exactly one DPoP header.');
  });

  test('step 2: malformed JWT', async () => {
    await assertProofRejected('not-a-jwt', 'The DPoP proof is not a well-formed JWT.');
  });

  test('step 3: missing jti, htm, htu, iat', async () => {
    await assertProofRejected(await proofFor({ claims: { jti: undefined } }), /^The DPoP proof needs a jti claim/);
    await assertProofRejected(await proofFor({ claims: { htm: undefined } }), 'The DPoP proof needs an htm claim with the request method.');
    await assertProofRejected(await proofFor({ claims: { htu: undefined } }), 'The DPoP proof needs an htu claim with the request URL.');
    await assertProofRejected(await proofFor({ claims: { iat: undefined } }), 'The DPoP proof needs a numeric iat claim.');
  });

  test('step 4: wrong typ', async () => {
    await assertProofRejected(await proofFor({ header: { typ: 'JWT' } }), 'The DPoP proof\'s typ header must be dpop+jwt.');
  });

  test('step 5: alg none and HS256', async () => {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const claims = { jti: 'none-1', htm: 'GET', htu: state.userinfoUrl, iat: Math.floor(Date.now() / 1000) };
    const unsigned = `${encode({ alg: 'none', typ: 'dpop+jwt', jwk: state.key.publicJwk })}.${encode(claims)}.`;
    await assertProofRejected(unsigned, `The DPoP proof's alg must be one of ${ALGS.split(' ').join(', ')}.`);

    const hmac = await new SignJWT({ ...claims, jti: 'hs-1' }).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: state.key.publicJwk }).sign(new Uint8Array(32).fill(7));
    await assertProofRejected(hmac, `The DPoP proof's alg must be one of ${ALGS.split(' ').join(', ')}.`);
  });

  test('step 6: signature by a key other than jwk', async () => {
    const other = await generateDpopKey();
    await assertProofRejected(await proofFor({ header: { jwk: other.publicJwk } }), 'The DPoP proof\'s signature does not verify with its jwk header.');
  });

  test('step 7: private key in jwk', async () => {
    const privateJwk = await exportJWK(state.key.privateKey);
    assert.ok(privateJwk.d !== undefined);
    await assertProofRejected(await proofFor({ header: { jwk: privateJwk } }), 'The DPoP proof\'s jwk header contains a private key; send only the public key.');
  });

  test('step 8: wrong htm', async () => {
    await assertProofRejected(await proofFor({ htm: 'POST' }), 'The DPoP proof\'s htm must be GET.');
  });

  test('step 9: wrong htu', async () => {
    await assertProofRejected(await proofFor({ htu: `${state.server.issuer}/token` }), `The DPoP proof's htu must be ${state.userinfoUrl}.`);
  });

  test('step 10: foreign nonce gets use_dpop_nonce', async () => {
    const response = await callUserinfo(state.userinfoUrl, `DPoP ${state.token}`, await proofFor({ nonce: 'made-up' }));
    assert.match(response.headers.get('dpop-nonce') ?? '', NONCE_FORMAT);
    await assertRejected(response, 'use_dpop_nonce', 'The DPoP proof\'s nonce is invalid or expired; use the nonce from the DPoP-Nonce header.');
  });

  test('step 11: iat outside the window', async () => {
    const now = Math.floor(Date.now() / 1000);
    await assertProofRejected(await proofFor({ iat: now - 600 }), 'The DPoP proof\'s iat is outside the acceptance window; create a fresh proof.');
    await assertProofRejected(await proofFor({ iat: now + 600 }), 'The DPoP proof\'s iat is outside the acceptance window; create a fresh proof.');
  });

  test('step 12: wrong ath, missing ath, other key', async () => {
    await assertProofRejected(await proofFor({ accessToken: `${state.token}x` }), 'The DPoP proof\'s ath does not match the access token.');
    await assertProofRejected(await proofFor({ claims: { ath: undefined } }), 'The DPoP proof\'s ath does not match the access token.');
    const other = await generateDpopKey();
    await assertProofRejected(await createProof(other, { htm: 'GET', htu: state.userinfoUrl, accessToken: state.token }), 'The DPoP proof is not signed with the key the access token is bound to.');
  });

  test('replayed proof is rejected', async () => {
    const proof = await proofFor();
    assert.equal((await callUserinfo(state.userinfoUrl, `DPoP ${state.token}`, proof)).status, 200);
    await assertProofRejected(proof, 'The DPoP proof was already used; create a new proof with a new jti for every request.');
  });
});

describe('DPoP nonces at userinfo (RFC 9449 §9)', () => {
  let state: UserinfoWorld;

  before(async () => {
    state = await startUserinfoWorld(browser, callback, true);
  });
  after(async () => state.server.stop());

  test('proof without nonce gets one, and the nonce admits the next', async () => {
    const first = await callUserinfo(state.userinfoUrl, `DPoP ${state.token}`, await createProof(state.key, { htm: 'GET', htu: state.userinfoUrl, accessToken: state.token }));
    const description = 'The DPoP proof must carry the nonce from the DPoP-Nonce header.';
    assert.equal(first.status, 401);
    assert.deepEqual(await first.json(), { error: 'use_dpop_nonce', error_description: description });
    assert.equal(first.headers.get('www-authenticate'), dpopChallenge('use_dpop_nonce', description));
    const nonce = first.headers.get('dpop-nonce') ?? '';
    assert.match(nonce, NONCE_FORMAT);

    const second = await callUserinfo(state.userinfoUrl, `DPoP ${state.token}`, await createProof(state.key, { htm: 'GET', htu: state.userinfoUrl, accessToken: state.token, nonce }));
    assert.equal(second.status, 200);
    assert.equal(((await second.json()) as Record<string, unknown>).sub, state.world.alice.id);
    assert.match(second.headers.get('dpop-nonce') ?? '', NONCE_FORMAT);
  });

  test('tampered nonce gets use_dpop_nonce', async () => {
    const first = await callUserinfo(state.userinfoUrl, `DPoP ${state.token}`, await createProof(state.key, { htm: 'GET', htu: state.userinfoUrl, accessToken: state.token }));
    await first.body?.cancel();
    const [issuedAt, mac] = (first.headers.get('dpop-nonce') ?? '').split('.');
    const tampered = `${Number(issuedAt) + 1}.${mac}`;

    const response = await callUserinfo(state.userinfoUrl, `DPoP ${state.token}`, await createProof(state.key, { htm: 'GET', htu: state.userinfoUrl, accessToken: state.token, nonce: tampered }));
    const description = 'The DPoP proof\'s nonce is invalid or expired; use the nonce from the DPoP-Nonce header.';
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), { error: 'use_dpop_nonce', error_description: description });
    assert.equal(response.headers.get('www-authenticate'), dpopChallenge('use_dpop_nonce', description));
    assert.match(response.headers.get('dpop-nonce') ?? '', NONCE_FORMAT);
  });
});
