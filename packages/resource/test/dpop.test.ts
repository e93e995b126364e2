import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { exportJWK, generateKeyPair } from 'jose';

import { createProof, generateDpopKey, requestAgentToken, startMandateWorld } from './mandate-world.ts';
import type { DpopKey, MandateWorld } from './mandate-world.ts';

const ALGS = 'EdDSA Ed25519 ES256 ES384 PS256 RS256';

describe('requireAccessToken with DPoP tokens from Mandate (RFC 9449 §7)', () => {
  let state: MandateWorld;
  let key: DpopKey;
  let boundToken: string;

  before(async () => {
    state = await startMandateWorld();
    key = await generateDpopKey();
    boundToken = await requestAgentToken(state, key);
  });
  after(async () => state.close());

  async function callWithDpop(proof: string | string[] | undefined, token = boundToken, method = 'GET'): Promise<Response> {
    state.lastClaims = undefined;
    const headers = new Headers({ authorization: `DPoP ${token}` });
    for (const value of typeof proof === 'string' ? [proof] : (proof ?? [])) {
      headers.append('dpop', value);
    }
    return fetch(state.messagesUrl, { method, headers });
  }

  async function goodProof(overrides: { htm?: string; htu?: string } = {}): Promise<string> {
    return createProof(key, { htm: overrides.htm ?? 'GET', htu: overrides.htu ?? state.messagesUrl, accessToken: boundToken });
  }

  async function assertProofRejected(response: Response, description: string): Promise<void> {
    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get('www-authenticate'),
      `DPoP realm="${state.resource}", error="invalid_dpop_proof", error_description="${description}", algs="${ALGS}", resource_metadata="${state.metadataUrl}"`,
    );
    assert.deepEqual(await response.json(), { error: 'invalid_dpop_proof', error_description: description });
    assert.equal(state.lastClaims, undefined);
  }

  it('accepts a bound token with a valid proof', async () => {
    const response = await callWithDpop(await goodProof());

    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { sub: state.world.agent.client.client_id });
    assert.deepEqual(state.lastClaims?.cnf, { jkt: key.jkt });
  });

  it('ignores the query in htu', async () => {
    state.lastClaims = undefined;
    const proof = await goodProof();
    const response = await fetch(`${state.messagesUrl}?folder=inbox`, {
      headers: { authorization: `DPoP ${boundToken}`, dpop: proof },
    });
    assert.equal(response.status, 200);
  });

  it('rejects a replayed proof', async () => {
    const proof = await goodProof();
    assert.equal((await callWithDpop(proof)).status, 200);

    await assertProofRejected(
      await callWithDpop(proof),
      'The DPoP proof was already used; create a new proof with a new jti for every request.',
    );
  });

  it('rejects a wrong htm', async () => {
    await assertProofRejected(await callWithDpop(await goodProof({ htm: 'POST' })), "The DPoP proof's htm must be GET.");
  });

  it('rejects a wrong htu', async () => {
    await assertProofRejected(
      await callWithDpop(await goodProof({ htu: `${state.resource}/other` })),
      `The DPoP proof's htu must be ${state.messagesUrl}.`,
    );
  });

  it('rejects a wrong ath', async () => {
    const proof = await createProof(key, { htm: 'GET', htu: state.messagesUrl, accessToken: `${boundToken}x` });
    await assertProofRejected(await callWithDpop(proof), "The DPoP proof's ath does not match the access token.");
  });

  it('rejects a proof without ath', async () => {
    const proof = await createProof(key, { htm: 'GET', htu: state.messagesUrl });
    await assertProofRejected(await callWithDpop(proof), 'The DPoP proof needs an ath claim with the hash of the access token.');
  });

  it('rejects a proof by another key', async () => {
    const otherKey = await generateDpopKey();
    const proof = await createProof(otherKey, { htm: 'GET', htu: state.messagesUrl, accessToken: boundToken });
    await assertProofRejected(
      await callWithDpop(proof),
      'The DPoP proof is not signed with the key the access token is bound to.',
    );
  });

  it('rejects a private key in jwk', async () => {
    const privateJwk = await exportJWK(key.privateKey);
    const proof = await createProof(key, { htm: 'GET', htu: state.messagesUrl, accessToken: boundToken, jwk: privateJwk });
    await assertProofRejected(
      await callWithDpop(proof),
      "The DPoP proof's jwk header contains a private key; send only the public key.",
    );
  });

  it('rejects a signature by a key other than jwk', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const proof = await createProof({ ...key, privateKey }, { htm: 'GET', htu: state.messagesUrl, accessToken: boundToken });
    await assertProofRejected(await callWithDpop(proof), "The DPoP proof's signature does not verify with its jwk header.");
  });

  it('rejects a stale iat', async () => {
    const proof = await createProof(key, {
      htm: 'GET',
      htu: state.messagesUrl,
      accessToken: boundToken,
      claims: { iat: Math.floor(Date.now() / 1000) - 600 },
    });
    await assertProofRejected(
      await callWithDpop(proof),
      "The DPoP proof's iat is outside the acceptance window; create a fresh proof.",
    );
  });

  it('rejects a missing proof', async () => {
    await assertProofRejected(
      await callWithDpop(undefined),
      'The request has no DPoP header. Send a DPoP proof with a DPoP-bound access token.',
    );
  });

  it('rejects two DPoP headers', async () => {
    await assertProofRejected(await callWithDpop([await goodProof(), await goodProof()]), 'The request must have exactly one DPoP header.');
  });

  it('rejects a wrong typ', async () => {
    const { SignJWT } = await import('jose');
    const proof = await new SignJWT({ jti: 'j1', htm: 'GET', htu: state.messagesUrl, iat: Math.floor(Date.now() / 1000) })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', jwk: key.publicJwk })
      .sign(key.privateKey);
    await assertProofRejected(await callWithDpop(proof), "The DPoP proof's typ header must be dpop+jwt.");
  });

  it('rejects a bound token under Bearer', async () => {
    state.lastClaims = undefined;
    const response = await fetch(state.messagesUrl, {
      headers: { authorization: `Bearer ${boundToken}`, dpop: await goodProof() },
    });

    // RFC 9449 §7.1: the challenge names the DPoP scheme and its algorithms, as Mandate's gateway does.
    const description = 'The access token is DPoP-bound; send it with the DPoP scheme and a DPoP proof.';
    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get('www-authenticate'),
      `DPoP realm="${state.resource}", error="invalid_token", error_description="${description}", algs="${ALGS}", resource_metadata="${state.metadataUrl}"`,
    );
    assert.deepEqual(await response.json(), { error: 'invalid_token', error_description: description });
    assert.equal(state.lastClaims, undefined);
  });

  it('rejects an unbound token under DPoP', async () => {
    const bearerToken = await requestAgentToken(state);
    const proof = await createProof(key, { htm: 'GET', htu: state.messagesUrl, accessToken: bearerToken });
    const response = await callWithDpop(proof, bearerToken);

    const description = 'The access token is not DPoP-bound; send it with the Bearer scheme.';
    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get('www-authenticate'),
      `DPoP realm="${state.resource}", error="invalid_token", error_description="${description}", algs="${ALGS}", resource_metadata="${state.metadataUrl}"`,
    );
    assert.deepEqual(await response.json(), { error: 'invalid_token', error_description: description });
  });

  it('accepts an unbound token under Bearer', async () => {
    const bearerToken = await requestAgentToken(state);
    const response = await fetch(state.messagesUrl, { headers: { authorization: `Bearer ${bearerToken}` } });
    assert.equal(response.status, 200);
  });
});

describe('requireAccessToken with DPoP turned off', () => {
  let state: MandateWorld;

  before(async () => {
    state = await startMandateWorld({ dpop: false });
  });
  after(async () => state.close());

  it('rejects a bound token with a Bearer challenge', async () => {
    const boundToken = await requestAgentToken(state, await generateDpopKey());
    const response = await fetch(state.messagesUrl, { headers: { authorization: `Bearer ${boundToken}` } });

    // This resource server accepts no DPoP proofs, so it offers only the Bearer scheme.
    const description = 'The access token is DPoP-bound; send it with the DPoP scheme and a DPoP proof.';
    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get('www-authenticate'),
      `Bearer realm="${state.resource}", error="invalid_token", error_description="${description}", resource_metadata="${state.metadataUrl}"`,
    );
    assert.equal(state.lastClaims, undefined);
  });
});
