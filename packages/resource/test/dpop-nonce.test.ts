import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { MandateAgent } from '../../agent/src/index.ts';
import { DpopNonceIssuer } from '../src/index.ts';
import { createProof, generateDpopKey, requestAgentToken, startMandateWorld } from './mandate-world.ts';
import type { DpopKey, MandateWorld } from './mandate-world.ts';

const ALGS = 'EdDSA Ed25519 ES256 ES384 PS256 RS256';
const NONCE_FORMAT = /^\d+\.[A-Za-z0-9_-]{43}$/;
const MISSING_NONCE = 'The DPoP proof must carry the nonce from the DPoP-Nonce header.';
const BAD_NONCE = "The DPoP proof's nonce is invalid or expired; use the nonce from the DPoP-Nonce header.";

describe('requireAccessToken with required DPoP nonces (RFC 9449 §9)', () => {
  /** Shared by the resource server and the test, as several processes behind one URL would share it. */
  const secret = randomBytes(32);
  let state: MandateWorld;
  let key: DpopKey;
  let boundToken: string;

  before(async () => {
    state = await startMandateWorld({ dpop: { requireNonce: { secret } } });
    key = await generateDpopKey();
    boundToken = await requestAgentToken(state, key);
  });
  after(async () => state.close());

  async function callWithProof(nonce?: string): Promise<Response> {
    state.lastClaims = undefined;
    const proof = await createProof(key, { htm: 'GET', htu: state.messagesUrl, accessToken: boundToken, claims: { nonce } });
    return fetch(state.messagesUrl, { headers: { authorization: `DPoP ${boundToken}`, dpop: proof } });
  }

  async function assertNonceRequested(response: Response, description: string): Promise<string> {
    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get('www-authenticate'),
      `DPoP realm="${state.resource}", error="use_dpop_nonce", error_description="${description}", algs="${ALGS}", resource_metadata="${state.metadataUrl}"`,
    );
    assert.deepEqual(await response.json(), { error: 'use_dpop_nonce', error_description: description });
    assert.equal(state.lastClaims, undefined);
    const nonce = response.headers.get('dpop-nonce') ?? '';
    assert.match(nonce, NONCE_FORMAT);
    return nonce;
  }

  /** Builds a nonce in the issuer's format, `<issue time>.<HMAC-SHA-256>`, for an issue time the issuer would not pick. */
  function nonceIssuedAt(issuedAt: number, hmacKey: Uint8Array = secret): string {
    return `${issuedAt}.${createHmac('sha256', hmacKey).update(`dpop-nonce.${issuedAt}`).digest('base64url')}`;
  }

  it('requests a nonce, then accepts it', async () => {
    const nonce = await assertNonceRequested(await callWithProof(), MISSING_NONCE);

    const response = await callWithProof(nonce);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { sub: state.world.agent.client.client_id });
    assert.deepEqual(state.lastClaims?.cnf, { jkt: key.jkt });
    // RFC 9449 §9: each accepted request carries a fresh nonce for the next one.
    assert.match(response.headers.get('dpop-nonce') ?? '', NONCE_FORMAT);
  });

  it('accepts a nonce from another process with the secret', async () => {
    const otherProcess = new DpopNonceIssuer({ secret });
    const response = await callWithProof(otherProcess.issue());
    assert.equal(response.status, 200);
  });

  it('rejects a nonce under another secret', async () => {
    const stranger = new DpopNonceIssuer();
    await assertNonceRequested(await callWithProof(stranger.issue()), BAD_NONCE);
  });

  it('rejects a tampered nonce', async () => {
    const [issuedAt, mac] = new DpopNonceIssuer({ secret }).issue().split('.');
    await assertNonceRequested(await callWithProof(`${Number(issuedAt) - 1}.${mac}`), BAD_NONCE);
  });

  it('rejects an expired nonce', async () => {
    const now = Math.floor(Date.now() / 1000);
    await assertNonceRequested(await callWithProof(nonceIssuedAt(now - 301)), BAD_NONCE);
    // The control: the same construction within the 300 second lifetime passes.
    assert.equal((await callWithProof(nonceIssuedAt(now - 200))).status, 200);
  });

  it('rejects a nonce issued in the future', async () => {
    const now = Math.floor(Date.now() / 1000);
    await assertNonceRequested(await callWithProof(nonceIssuedAt(now + 120)), BAD_NONCE);
  });

  it('rejects a malformed nonce', async () => {
    await assertNonceRequested(await callWithProof('made-up'), BAD_NONCE);
  });

  it('rejects a non-string nonce claim', async () => {
    state.lastClaims = undefined;
    const proof = await createProof(key, { htm: 'GET', htu: state.messagesUrl, accessToken: boundToken, claims: { nonce: 42 } });
    const response = await fetch(state.messagesUrl, { headers: { authorization: `DPoP ${boundToken}`, dpop: proof } });
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), { error: 'invalid_dpop_proof', error_description: "The DPoP proof's nonce claim must be a string." });
  });

  it('still rejects a replayed proof with a nonce', async () => {
    const nonce = new DpopNonceIssuer({ secret }).issue();
    const proof = await createProof(key, { htm: 'GET', htu: state.messagesUrl, accessToken: boundToken, claims: { nonce } });
    const send = () => fetch(state.messagesUrl, { headers: { authorization: `DPoP ${boundToken}`, dpop: proof } });
    assert.equal((await send()).status, 200);

    const replayed = await send();
    assert.equal(replayed.status, 401);
    assert.deepEqual(await replayed.json(), {
      error: 'invalid_dpop_proof',
      error_description: 'The DPoP proof was already used; create a new proof with a new jti for every request.',
    });
  });

  it('sends no nonce to a Bearer request', async () => {
    const bearerToken = await requestAgentToken(state);
    const response = await fetch(state.messagesUrl, { headers: { authorization: `Bearer ${bearerToken}` } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('dpop-nonce'), null);
  });

  it('MandateAgent retries once with the nonce', async () => {
    const sent: { url: string; status: number }[] = [];
    const agent = new MandateAgent({
      issuer: state.mandate.issuer,
      clientId: state.world.agent.client.client_id,
      clientSecret: state.world.agent.clientSecret ?? '',
      dpop: true,
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        sent.push({ url: String(input), status: response.status });
        return response;
      },
    });
    const token = await agent.clientCredentials({ resource: state.resource, scope: 'mail.read' });
    assert.equal(token.tokenType, 'DPoP');

    const response = await agent.callGateway({ url: state.messagesUrl, accessToken: token.accessToken });
    assert.equal(response.status, 200);
    assert.deepEqual(
      sent.filter((request) => request.url === state.messagesUrl).map((request) => request.status),
      [401, 200],
    );

    // The nonce of the 200 response goes into the next proof, so no second round trip is needed.
    assert.equal((await agent.callGateway({ url: state.messagesUrl, accessToken: token.accessToken })).status, 200);
    assert.deepEqual(
      sent.filter((request) => request.url === state.messagesUrl).map((request) => request.status),
      [401, 200, 200],
    );
  });
});

describe('DpopNonceIssuer options', () => {
  it('rejects a short secret', () => {
    assert.throws(() => new DpopNonceIssuer({ secret: 'too short' }), {
      name: 'TypeError',
      message: 'The DPoP nonce secret must be at least 32 bytes, got 9',
    });
  });

  it('rejects a lifetime that is not a positive integer', () => {
    for (const lifetimeSeconds of [0, -5, 1.5, Number.NaN]) {
      assert.throws(() => new DpopNonceIssuer({ lifetimeSeconds }), { name: 'TypeError' }, String(lifetimeSeconds));
    }
  });

  it('checks the nonces it issued', () => {
    const issuer = new DpopNonceIssuer({ secret: 'a string secret of at least 32 bytes' });
    const nonce = issuer.issue();
    assert.match(nonce, NONCE_FORMAT);
    assert.equal(issuer.isValid(nonce), true);
    assert.equal(new DpopNonceIssuer({ secret: 'another string secret, 32 bytes long' }).isValid(nonce), false);
  });
});
