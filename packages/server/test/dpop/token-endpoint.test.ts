import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, decodeJwt, exportJWK } from 'jose';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { basicAuthorization, createProof, generateDpopKey, type DpopKey } from './proofs.ts';

describe('DPoP at the token endpoint (RFC 9449 §4.3, §5)', () => {
  let server: TestServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let key: DpopKey;
  let tokenUrl: string;

  before(async () => {
    server = await startTestServer();
    world = await seedWorld(server.ctx);
    key = await generateDpopKey();
    tokenUrl = `${server.issuer}/token`;
  });
  after(async () => server.stop());

  async function requestToken(proof: string | string[] | undefined, clientId = world.agent.client.client_id, secret = world.agent.clientSecret ?? '') {
    const headers = new Headers({ authorization: basicAuthorization(clientId, secret), 'content-type': 'application/x-www-form-urlencoded' });
    for (const value of typeof proof === 'string' ? [proof] : (proof ?? [])) headers.append('dpop', value);
    const response = await fetch(tokenUrl, { method: 'POST', headers, body: new URLSearchParams({ grant_type: 'client_credentials', resource: world.resource.identifier, scope: 'mail.read' }) });
    return { response, body: (await response.json()) as Record<string, unknown> };
  }

  async function assertRejected(proof: string | string[] | undefined, description: string | RegExp) {
    const { response, body } = await requestToken(proof);
    assert.equal(response.status, 400);
    assert.equal(body.error, 'invalid_dpop_proof');
    if (typeof description === 'string') assert.equal(body.error_description, description);
    else assert.match(String(body.error_description), description);
    assert.equal(body.access_token, undefined);
  }

  test('metadata lists the DPoP algorithms', async () => {
    const metadata = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    assert.deepEqual(metadata.dpop_signing_alg_values_supported, ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'PS256', 'RS256']);
  });

  test('valid proof yields a DPoP-bound token', async () => {
    const { response, body } = await requestToken(await createProof(key, { htm: 'POST', htu: tokenUrl }));
    assert.equal(response.status, 200);
    assert.equal(body.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(String(body.access_token)).cnf, { jkt: key.jkt });
  });

  test('Ed25519 proof is accepted', async () => {
    const edKey = await generateDpopKey('EdDSA');
    const { response, body } = await requestToken(await createProof(edKey, { htm: 'POST', htu: tokenUrl }));
    assert.equal(response.status, 200);
    assert.deepEqual(decodeJwt(String(body.access_token)).cnf, { jkt: edKey.jkt });
  });

  test('request without proof stays a bearer token', async () => {
    const { response, body } = await requestToken(undefined);
    assert.equal(response.status, 200);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(decodeJwt(String(body.access_token)).cnf, undefined);
  });

  test('htu matches after normalization, ignoring query', async () => {
    const htu = tokenUrl.replace('http://', 'HTTP://') + '?ignored=1#fragment';
    const { response } = await requestToken(await createProof(key, { htm: 'POST', htu }));
    assert.equal(response.status, 200);
  });

  test('step 1: two DPoP headers', async () => {
    const first = await createProof(key, { htm: 'POST', htu: tokenUrl });
    const second = await createProof(key, { htm: 'POST', htu: tokenUrl });
    await assertRejected([first, second], 'The request must have exactly one DPoP header.');
  });

  test('step 2: malformed JWT', async () => {
    await assertRejected('not-a-jwt', 'The DPoP proof is not a well-formed JWT.');
  });

  test('step 3: missing jti, htm, htu, iat', async () => {
    await assertRejected(await createProof(key, { htm: 'POST', htu: tokenUrl, claims: { jti: undefined } }), /needs a jti claim/);
    await assertRejected(await createProof(key, { htm: 'POST', htu: tokenUrl, claims: { htm: undefined } }), 'The DPoP proof needs an htm claim with the request method.');
    await assertRejected(await createProof(key, { htm: 'POST', htu: tokenUrl, claims: { htu: undefined } }), 'The DPoP proof needs an htu claim with the request URL.');
    await assertRejected(await createProof(key, { htm: 'POST', htu: tokenUrl, claims: { iat: undefined } }), 'The DPoP proof needs a numeric iat claim.');
  });

  test('step 4: wrong typ', async () => {
    await assertRejected(await createProof(key, { htm: 'POST', htu: tokenUrl, header: { typ: 'JWT' } }), 'The DPoP proof\'s typ header must be dpop+jwt.');
  });

  test('step 5: alg none and HS256', async () => {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const claims = { jti: 'none-1', htm: 'POST', htu: tokenUrl, iat: Math.floor(Date.now() / 1000) };
    const unsigned = `${encode({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk })}.${encode(claims)}.`;
    await assertRejected(unsigned, /alg must be one of EdDSA, Ed25519, ES256/);

    const secret = new Uint8Array(32).fill(7);
    const hmac = await new SignJWT({ ...claims, jti: 'hs-1' }).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt' }).sign(secret);
    await assertRejected(hmac, /alg must be one of/);
  });

  test('step 6: signature by another key', async () => {
    const other = await generateDpopKey();
    await assertRejected(await createProof(key, { htm: 'POST', htu: tokenUrl, header: { jwk: other.publicJwk } }), 'The DPoP proof\'s signature does not verify with its jwk header.');
  });

  test('step 7: private key in jwk', async () => {
    const privateJwk = await exportJWK(key.privateKey);
    assert.ok(privateJwk.d !== undefined);
    await assertRejected(await createProof(key, { htm: 'POST', htu: tokenUrl, header: { jwk: privateJwk } }), 'The DPoP proof\'s jwk header contains a private key; send only the public key.');
  });

  test('step 8: wrong htm', async () => {
    await assertRejected(await createProof(key, { htm: 'GET', htu: tokenUrl }), 'The DPoP proof\'s htm must be POST.');
  });

  test('step 9: wrong htu', async () => {
    await assertRejected(await createProof(key, { htm: 'POST', htu: `${server.issuer}/authorize` }), `The DPoP proof's htu must be ${tokenUrl}.`);
    await assertRejected(await createProof(key, { htm: 'POST', htu: 'not a url' }), `The DPoP proof's htu must be ${tokenUrl}.`);
  });

  test('step 10: foreign nonce gets use_dpop_nonce', async () => {
    const { response, body } = await requestToken(await createProof(key, { htm: 'POST', htu: tokenUrl, nonce: 'made-up' }));
    assert.equal(response.status, 400);
    assert.equal(body.error, 'use_dpop_nonce');
    assert.match(response.headers.get('dpop-nonce') ?? '', /^\d+\.[A-Za-z0-9_-]{43}$/);
  });

  test('step 11: iat outside the window', async () => {
    const now = Math.floor(Date.now() / 1000);
    await assertRejected(await createProof(key, { htm: 'POST', htu: tokenUrl, iat: now - 600 }), 'The DPoP proof\'s iat is outside the acceptance window; create a fresh proof.');
    await assertRejected(await createProof(key, { htm: 'POST', htu: tokenUrl, iat: now + 600 }), 'The DPoP proof\'s iat is outside the acceptance window; create a fresh proof.');
  });

  test('replayed proof is rejected', async () => {
    const proof = await createProof(key, { htm: 'POST', htu: tokenUrl });
    const first = await requestToken(proof);
    assert.equal(first.response.status, 200);
    await assertRejected(proof, 'The DPoP proof was already used; create a new proof with a new jti for every request.');
  });

  test('client with require_dpop needs a proof', async () => {
    await server.ctx.db.updateTable('clients').set({ require_dpop: 1 }).where('client_id', '=', world.agent.client.client_id).execute();
    try {
      await assertRejected(undefined, `The client ${world.agent.client.client_id} must send a DPoP proof with every token request.`);
      const { response, body } = await requestToken(await createProof(key, { htm: 'POST', htu: tokenUrl }));
      assert.equal(response.status, 200);
      assert.equal(body.token_type, 'DPoP');
    } finally {
      await server.ctx.db.updateTable('clients').set({ require_dpop: null }).where('client_id', '=', world.agent.client.client_id).execute();
    }
  });
});
