import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { issueAccessToken } from '../../src/oauth/access-token.ts';
import { createDelegation } from '../../src/oauth/delegation.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { ACCESS_TOKEN_TYPE, createWorld, delegatedToken, startUpstream, TOKEN_EXCHANGE, type Upstream, type World } from '../gateway/world.ts';
import { basicAuthorization, createProof, generateDpopKey, type DpopKey } from './proofs.ts';

const ALGS = 'algs="EdDSA Ed25519 ES256 ES384 PS256 RS256"';

/** Obtains a DPoP-bound delegated token by token exchange with a proof by `key`. */
async function dpopDelegatedToken(server: TestServer, world: World, key: DpopKey, nonce?: string): Promise<Response> {
  await createDelegation(server.ctx, { userId: world.user.id, clientId: world.agentId, resourceId: world.resourceId, scope: ['read', 'echo'], source: 'consent' });
  const subject = await issueAccessToken(server.ctx, { subject: world.user.id, clientId: world.applicationId, audience: world.identifier, scope: ['read', 'echo'], lifetimeSeconds: 600 });
  const proof = await createProof(key, { htm: 'POST', htu: `${server.issuer}/token`, ...(nonce === undefined ? {} : { nonce }) });
  return fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { authorization: basicAuthorization(world.agentId, world.agentSecret), 'content-type': 'application/x-www-form-urlencoded', dpop: proof },
    body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, subject_token: subject.token, subject_token_type: ACCESS_TOKEN_TYPE, resource: world.identifier, scope: 'read echo' }),
  });
}

async function accessTokenOf(response: Response): Promise<string> {
  const body = (await response.json()) as { access_token?: string; token_type?: string };
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.equal(body.token_type, 'DPoP');
  return body.access_token ?? '';
}

function callGateway(server: TestServer, world: World, path: string, authorization: string, proof?: string, method = 'GET'): Promise<Response> {
  return fetch(`${server.issuer}/gateway/${world.resourceName}${path}`, { method, headers: { authorization, ...(proof === undefined ? {} : { dpop: proof }) } });
}

describe('DPoP at the gateway (RFC 9449 §7)', () => {
  let server: TestServer;
  let upstream: Upstream;
  let world: World;
  let key: DpopKey;
  let token: string;
  let itemsUrl: string;

  before(async () => {
    server = await startTestServer();
    upstream = await startUpstream();
    world = await createWorld(server, upstream.url);
    key = await generateDpopKey();
    token = await accessTokenOf(await dpopDelegatedToken(server, world, key));
    itemsUrl = `${server.issuer}/gateway/${world.resourceName}/items/1`;
  });
  after(async () => {
    await upstream.close();
    await server.stop();
  });

  async function assertDenied(response: Response, error: string, description: string) {
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(response.status, 401);
    assert.equal(body.error, error);
    assert.equal(body.error_description, description);
    const challenge = response.headers.get('www-authenticate') ?? '';
    assert.ok(challenge.startsWith('DPoP '), challenge);
    assert.ok(challenge.includes(ALGS), challenge);
    assert.ok(challenge.includes(`error="${error}"`), challenge);
  }

  test('bound token with a valid proof passes', async () => {
    const before = upstream.received.length;
    const response = await callGateway(server, world, '/items/1?view=full', `DPoP ${token}`, await createProof(key, { htm: 'GET', htu: itemsUrl, accessToken: token }));
    assert.equal(response.status, 200);
    assert.equal(upstream.received.length, before + 1);
    assert.equal(upstream.received.at(-1)?.headers.dpop, undefined);
  });

  test('bound token under Bearer is rejected', async () => {
    const response = await callGateway(server, world, '/items/1', `Bearer ${token}`);
    await assertDenied(response, 'invalid_token', 'The access token is bound to a DPoP key; send it as "Authorization: DPoP <token>" with a DPoP proof.');
  });

  test('bound token without proof is rejected', async () => {
    const response = await callGateway(server, world, '/items/1', `DPoP ${token}`);
    await assertDenied(response, 'invalid_dpop_proof', 'The request has no DPoP header. Send a DPoP proof in the DPoP header.');
  });

  test('wrong ath is rejected', async () => {
    const proof = await createProof(key, { htm: 'GET', htu: itemsUrl, accessToken: `${token}x` });
    await assertDenied(await callGateway(server, world, '/items/1', `DPoP ${token}`, proof), 'invalid_dpop_proof', 'The DPoP proof\'s ath does not match the access token.');
  });

  test('missing ath is rejected', async () => {
    const proof = await createProof(key, { htm: 'GET', htu: itemsUrl });
    await assertDenied(await callGateway(server, world, '/items/1', `DPoP ${token}`, proof), 'invalid_dpop_proof', 'The DPoP proof\'s ath does not match the access token.');
  });

  test('proof by another key is rejected', async () => {
    const other = await generateDpopKey();
    const proof = await createProof(other, { htm: 'GET', htu: itemsUrl, accessToken: token });
    await assertDenied(await callGateway(server, world, '/items/1', `DPoP ${token}`, proof), 'invalid_dpop_proof', 'The DPoP proof is not signed with the key the access token is bound to.');
  });

  test('wrong htm and htu are rejected', async () => {
    const wrongMethod = await createProof(key, { htm: 'POST', htu: itemsUrl, accessToken: token });
    await assertDenied(await callGateway(server, world, '/items/1', `DPoP ${token}`, wrongMethod), 'invalid_dpop_proof', 'The DPoP proof\'s htm must be GET.');
    const wrongUrl = await createProof(key, { htm: 'GET', htu: `${server.issuer}/gateway/${world.resourceName}/items/2`, accessToken: token });
    await assertDenied(await callGateway(server, world, '/items/1', `DPoP ${token}`, wrongUrl), 'invalid_dpop_proof', `The DPoP proof's htu must be ${itemsUrl}.`);
  });

  test('replayed proof is rejected', async () => {
    const proof = await createProof(key, { htm: 'GET', htu: itemsUrl, accessToken: token });
    assert.equal((await callGateway(server, world, '/items/1', `DPoP ${token}`, proof)).status, 200);
    await assertDenied(await callGateway(server, world, '/items/1', `DPoP ${token}`, proof), 'invalid_dpop_proof', 'The DPoP proof was already used; create a new proof with a new jti for every request.');
  });

  test('bearer token under DPoP is rejected', async () => {
    const bearer = await delegatedToken(server, world, 'read');
    const proof = await createProof(key, { htm: 'GET', htu: itemsUrl, accessToken: bearer });
    await assertDenied(await callGateway(server, world, '/items/1', `DPoP ${bearer}`, proof), 'invalid_token', 'The access token is not bound to a DPoP key; send it as "Authorization: Bearer <token>".');
  });

  test('bearer token still works under Bearer', async () => {
    const bearer = await delegatedToken(server, world, 'read');
    const response = await callGateway(server, world, '/items/1', `Bearer ${bearer}`);
    assert.equal(response.status, 200);
  });

  test('policy denial keeps the DPoP challenge', async () => {
    const proof = await createProof(key, { htm: 'POST', htu: `${server.issuer}/gateway/${world.resourceName}/items`, accessToken: token });
    const response = await callGateway(server, world, '/items', `DPoP ${token}`, proof, 'POST');
    assert.equal(response.status, 403);
    const challenge = response.headers.get('www-authenticate') ?? '';
    assert.ok(challenge.startsWith(`DPoP ${ALGS}`), challenge);
    assert.ok(challenge.includes('error="insufficient_scope"'), challenge);
  });
});

describe('DPoP nonces (RFC 9449 §8, §9)', () => {
  let server: TestServer;
  let upstream: Upstream;
  let world: World;
  let key: DpopKey;

  before(async () => {
    server = await startTestServer({ dpopNoncesRequired: true });
    upstream = await startUpstream();
    world = await createWorld(server, upstream.url);
    key = await generateDpopKey();
  });
  after(async () => {
    await upstream.close();
    await server.stop();
  });

  test('token endpoint and gateway demand a nonce', async () => {
    const first = await dpopDelegatedToken(server, world, key);
    const firstBody = (await first.json()) as Record<string, unknown>;
    assert.equal(first.status, 400);
    assert.equal(firstBody.error, 'use_dpop_nonce');
    assert.equal(firstBody.error_description, 'The DPoP proof must carry the nonce from the DPoP-Nonce header.');
    const nonce = first.headers.get('dpop-nonce');
    assert.ok(nonce !== null);

    const second = await dpopDelegatedToken(server, world, key, nonce);
    assert.ok(second.headers.get('dpop-nonce') !== null);
    const token = await accessTokenOf(second);

    const itemsUrl = `${server.issuer}/gateway/${world.resourceName}/items/1`;
    const denied = await callGateway(server, world, '/items/1', `DPoP ${token}`, await createProof(key, { htm: 'GET', htu: itemsUrl, accessToken: token }));
    assert.equal(denied.status, 401);
    assert.ok((denied.headers.get('www-authenticate') ?? '').startsWith('DPoP '));
    assert.ok((denied.headers.get('www-authenticate') ?? '').includes('error="use_dpop_nonce"'));
    const gatewayNonce = denied.headers.get('dpop-nonce');
    assert.ok(gatewayNonce !== null);

    const allowed = await callGateway(server, world, '/items/1', `DPoP ${token}`, await createProof(key, { htm: 'GET', htu: itemsUrl, accessToken: token, nonce: gatewayNonce }));
    assert.equal(allowed.status, 200);

    // RFC 9449 §9: the successful response already carries the next nonce, which works at once.
    const nextNonce = allowed.headers.get('dpop-nonce');
    assert.ok(nextNonce !== null);
    const again = await callGateway(server, world, '/items/1', `DPoP ${token}`, await createProof(key, { htm: 'GET', htu: itemsUrl, accessToken: token, nonce: nextNonce }));
    assert.equal(again.status, 200);
  });

  test('tampered nonce is refused', async () => {
    const first = await dpopDelegatedToken(server, world, key);
    const nonce = first.headers.get('dpop-nonce') ?? '';
    const tampered = `${Number(nonce.split('.')[0]) + 1}.${nonce.split('.')[1]}`;
    const response = await dpopDelegatedToken(server, world, key, tampered);
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(response.status, 400);
    assert.equal(body.error, 'use_dpop_nonce');
    assert.equal(body.error_description, 'The DPoP proof\'s nonce is invalid or expired; use the nonce from the DPoP-Nonce header.');
  });
});
