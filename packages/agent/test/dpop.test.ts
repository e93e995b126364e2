import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { decodeJwt, decodeProtectedHeader } from 'jose';

import { InvalidResponseError, MandateAgent, TokenEndpointError, UnauthorizedError } from '../src/index.ts';
import { issueAccessToken } from '../../server/src/oauth/access-token.ts';
import { createDelegation } from '../../server/src/oauth/delegation.ts';
import { startTestServer } from '../../server/test/harness.ts';
import type { TestServer } from '../../server/test/harness.ts';
import { createWorld, startUpstream } from '../../server/test/gateway/world.ts';
import type { Upstream, World } from '../../server/test/gateway/world.ts';

/** One request the agent sent, with the status the real server returned. */
interface SentRequest {
  path: string;
  dpop: string | null;
  status: number;
}

/**
 * Returns a fetch that forwards to the real server and records each request.
 * `rewrite` may replace a response, to play a server that misbehaves.
 */
function recordingFetch(sent: SentRequest[], rewrite?: (path: string, response: Response) => Promise<Response>): typeof fetch {
  return async (input, init) => {
    const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
    const response = await fetch(input, init);
    sent.push({ path, dpop: new Headers(init?.headers).get('dpop'), status: response.status });
    return rewrite === undefined ? response : rewrite(path, response);
  };
}

function agentFor(server: TestServer, world: World, options: { sent?: SentRequest[]; dpop?: boolean | CryptoKeyPair; fetch?: typeof fetch } = {}): MandateAgent {
  return new MandateAgent({
    issuer: server.issuer,
    clientId: world.agentId,
    clientSecret: world.agentSecret,
    dpop: options.dpop ?? true,
    fetch: options.fetch ?? recordingFetch(options.sent ?? []),
  });
}

/** Records the person's consent and returns an access token of the person's application to exchange. */
async function subjectToken(server: TestServer, world: World): Promise<string> {
  await createDelegation(server.ctx, { userId: world.user.id, clientId: world.agentId, resourceId: world.resourceId, scope: ['read', 'echo'], source: 'consent' });
  const subject = await issueAccessToken(server.ctx, { subject: world.user.id, clientId: world.applicationId, audience: world.identifier, scope: ['read', 'echo'], lifetimeSeconds: 600 });
  return subject.token;
}

function tokenRequests(sent: SentRequest[]): SentRequest[] {
  return sent.filter((request) => request.path === '/token');
}

function gatewayRequests(sent: SentRequest[]): SentRequest[] {
  return sent.filter((request) => request.path.startsWith('/gateway/'));
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('expected the call to throw'),
    (error: unknown) => error,
  );
}

describe('DPoP agent against Mandate', () => {
  let server: TestServer;
  let upstream: Upstream;
  let world: World;

  before(async () => {
    server = await startTestServer();
    upstream = await startUpstream();
    world = await createWorld(server, upstream.url);
  });
  after(async () => {
    await upstream.close();
    await server.stop();
  });

  it('binds client_credentials tokens to the key', async () => {
    const sent: SentRequest[] = [];
    const agent = agentFor(server, world, { sent });

    const token = await agent.clientCredentials({ resource: world.identifier, scope: 'read' });

    const key = await agent.dpopKey();
    assert.ok(key !== undefined);
    assert.equal(token.tokenType, 'DPoP');
    assert.deepEqual(decodeJwt(token.accessToken).cnf, { jkt: key.thumbprint });
    assert.equal(tokenRequests(sent).length, 1);

    const proof = tokenRequests(sent)[0]?.dpop ?? '';
    const header = decodeProtectedHeader(proof);
    const claims = decodeJwt(proof);
    assert.equal(header.typ, 'dpop+jwt');
    assert.equal(header.alg, 'EdDSA');
    assert.deepEqual(header.jwk, key.publicJwk);
    assert.equal(claims.htm, 'POST');
    assert.equal(claims.htu, `${server.issuer}/token`);
    assert.equal(claims.ath, undefined);
  });

  it('keeps one non-extractable key per agent', async () => {
    const agent = agentFor(server, world);

    const first = await agent.clientCredentials({ resource: world.identifier, scope: 'read' });
    const second = await agent.clientCredentials({ resource: world.identifier, scope: 'read' });

    const key = await agent.dpopKey();
    assert.ok(key !== undefined);
    assert.equal(key.keyPair.privateKey.extractable, false);
    await assert.rejects(crypto.subtle.exportKey('jwk', key.keyPair.privateKey));
    await assert.rejects(crypto.subtle.exportKey('pkcs8', key.keyPair.privateKey));
    assert.equal(key.publicJwk.d, undefined);
    assert.deepEqual(decodeJwt(first.accessToken).cnf, decodeJwt(second.accessToken).cnf);

    const otherAgent = agentFor(server, world);
    const otherKey = await otherAgent.dpopKey();
    assert.notEqual(otherKey?.thumbprint, key.thumbprint);
  });

  it('calls the gateway with a bound token', async () => {
    const sent: SentRequest[] = [];
    const agent = agentFor(server, world, { sent });
    const token = await agent.exchangeToken({ subjectToken: await subjectToken(server, world), resource: world.identifier, scope: 'read echo' });
    assert.equal(token.tokenType, 'DPoP');
    const upstreamCalls = upstream.received.length;

    const response = await agent.callGateway({ url: `${world.resourceName}/items/1?view=full`, accessToken: token.accessToken });

    assert.equal(response.status, 200);
    assert.equal(upstream.received.length, upstreamCalls + 1);
    assert.equal(upstream.received.at(-1)?.headers.dpop, undefined);

    const call = gatewayRequests(sent);
    assert.equal(call.length, 1);
    const claims = decodeJwt(call[0]?.dpop ?? '');
    assert.equal(claims.htm, 'GET');
    assert.equal(claims.htu, `${server.issuer}/gateway/${world.resourceName}/items/1`);
    assert.equal(typeof claims.ath, 'string');
  });

  it('rejects bound token under Bearer', async () => {
    const agent = agentFor(server, world);
    const token = await agent.exchangeToken({ subjectToken: await subjectToken(server, world), resource: world.identifier, scope: 'read echo' });
    const upstreamCalls = upstream.received.length;

    const response = await fetch(`${server.issuer}/gateway/${world.resourceName}/items/1`, {
      headers: { authorization: `Bearer ${token.accessToken}` },
    });

    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { error?: string }).error, 'invalid_token');
    assert.equal(upstream.received.length, upstreamCalls);
  });

  it('does not retry a gateway 401 without use_dpop_nonce', async () => {
    const sent: SentRequest[] = [];
    const agent = agentFor(server, world, { sent });
    const token = await agent.exchangeToken({ subjectToken: await subjectToken(server, world), resource: world.identifier, scope: 'read echo' });
    const otherAgent = agentFor(server, world, { sent });

    // Another agent's key does not match the token's cnf.jkt.
    const error = await rejection(otherAgent.callGateway({ url: `${world.resourceName}/items/1`, accessToken: token.accessToken }));

    assert.ok(error instanceof UnauthorizedError);
    assert.equal(error.error, 'invalid_dpop_proof');
    assert.equal(gatewayRequests(sent).length, 1);
  });

  it('does not retry a token endpoint error', async () => {
    const sent: SentRequest[] = [];
    const agent = new MandateAgent({ issuer: server.issuer, clientId: world.agentId, clientSecret: 'wrong-secret', dpop: true, fetch: recordingFetch(sent) });

    const error = await rejection(agent.clientCredentials({ resource: world.identifier, scope: 'read' }));

    assert.ok(error instanceof TokenEndpointError);
    assert.equal(error.error, 'invalid_client');
    assert.equal(tokenRequests(sent).length, 1);
  });

  it('rejects a Bearer answer to a DPoP request', async () => {
    const sent: SentRequest[] = [];
    const asBearer = async (path: string, response: Response): Promise<Response> => {
      if (path !== '/token' || response.status !== 200) return response;
      const body = (await response.json()) as Record<string, unknown>;
      return Response.json({ ...body, token_type: 'Bearer' });
    };
    const agent = agentFor(server, world, { fetch: recordingFetch(sent, asBearer) });

    const error = await rejection(agent.clientCredentials({ resource: world.identifier, scope: 'read' }));

    assert.ok(error instanceof InvalidResponseError);
    assert.match(error.message, /token_type Bearer, expected DPoP/);
    assert.equal(tokenRequests(sent).length, 1);
  });
});

describe('DPoP nonces against Mandate', () => {
  let server: TestServer;
  let upstream: Upstream;
  let world: World;

  before(async () => {
    server = await startTestServer({ dpopNoncesRequired: true });
    upstream = await startUpstream();
    world = await createWorld(server, upstream.url);
  });
  after(async () => {
    await upstream.close();
    await server.stop();
  });

  it('retries the token request once with the nonce', async () => {
    const sent: SentRequest[] = [];
    const agent = agentFor(server, world, { sent });

    const token = await agent.clientCredentials({ resource: world.identifier, scope: 'read' });

    assert.equal(token.tokenType, 'DPoP');
    assert.deepEqual(tokenRequests(sent).map((request) => request.status), [400, 200]);
    assert.equal(decodeJwt(tokenRequests(sent)[0]?.dpop ?? '').nonce, undefined);
    assert.equal(typeof decodeJwt(tokenRequests(sent)[1]?.dpop ?? '').nonce, 'string');

    // The nonce of the last response goes into the next proof, so no round trip is needed.
    await agent.clientCredentials({ resource: world.identifier, scope: 'read' });
    assert.deepEqual(tokenRequests(sent).map((request) => request.status), [400, 200, 200]);
  });

  it('stops after one nonce retry', async () => {
    const sent: SentRequest[] = [];
    // Replace each nonce the server issues with one it never issued, so the retry fails too.
    const forgeNonce = async (_path: string, response: Response): Promise<Response> => {
      if (!response.headers.has('dpop-nonce')) return response;
      const headers = new Headers(response.headers);
      headers.set('dpop-nonce', '1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
      return new Response(await response.arrayBuffer(), { status: response.status, headers });
    };
    const agent = agentFor(server, world, { fetch: recordingFetch(sent, forgeNonce) });

    const error = await rejection(agent.clientCredentials({ resource: world.identifier, scope: 'read' }));

    assert.ok(error instanceof TokenEndpointError);
    assert.equal(error.error, 'use_dpop_nonce');
    assert.deepEqual(tokenRequests(sent).map((request) => request.status), [400, 400]);
  });

  it('retries the gateway call once with the nonce', async () => {
    const keyPair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const tokenAgent = agentFor(server, world, { dpop: keyPair });
    const token = await tokenAgent.exchangeToken({ subjectToken: await subjectToken(server, world), resource: world.identifier, scope: 'read echo' });
    assert.equal(decodeProtectedHeader(token.accessToken).typ, 'at+jwt');

    // A second agent with the same key has no nonce yet, so the gateway requests one.
    const sent: SentRequest[] = [];
    const agent = agentFor(server, world, { dpop: keyPair, sent });
    const upstreamCalls = upstream.received.length;

    const response = await agent.callGateway({ url: `${world.resourceName}/items/1`, accessToken: token.accessToken });

    assert.equal(response.status, 200);
    assert.deepEqual(gatewayRequests(sent).map((request) => request.status), [401, 200]);
    assert.equal(decodeProtectedHeader(gatewayRequests(sent)[0]?.dpop ?? '').alg, 'ES256');
    assert.equal(typeof decodeJwt(gatewayRequests(sent)[1]?.dpop ?? '').nonce, 'string');
    assert.equal(upstream.received.length, upstreamCalls + 1);
  });
});
