import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';

import { decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';

import { InvalidResponseError, MandateAgent, TokenEndpointError } from '../src/index.ts';
import { FakeMandateServer, formParameters } from './fake-mandate-server.ts';
import type { RecordedRequest } from './fake-mandate-server.ts';

const RESOURCE = 'https://api.example.test/';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

let server: FakeMandateServer;

before(async () => {
  server = await FakeMandateServer.start();
});

afterEach(() => {
  server.reset();
});

after(async () => {
  await server.close();
});

/** Decodes an RFC 6749 §2.3.1 Basic header: Base64, then form-urlencoded id and secret. */
function decodeBasicCredentials(request: RecordedRequest): { clientId: string; clientSecret: string } {
  const match = /^Basic (.+)$/.exec(request.headers.authorization ?? '');
  assert.ok(match, 'expected a Basic Authorization header');
  const userPass = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const separator = userPass.indexOf(':');
  const formDecode = (value: string): string => new URLSearchParams(`v=${value}`).get('v') ?? '';
  return {
    clientId: formDecode(userPass.slice(0, separator)),
    clientSecret: formDecode(userPass.slice(separator + 1)),
  };
}

function tokenReply(extra: Record<string, unknown> = {}): { status: number; body: Record<string, unknown> } {
  return {
    status: 200,
    body: { access_token: 'at-123', token_type: 'Bearer', expires_in: 600, scope: 'repo:read', ...extra },
  };
}

function secretAgent(): MandateAgent {
  return new MandateAgent({ issuer: server.issuer, clientId: 'agent:7 ü', clientSecret: 's3cr+t:/%' });
}

describe('MandateAgent with client_secret_basic', () => {
  it('sends a client_credentials request', async () => {
    server.handler = () => tokenReply();
    const before = Date.now();

    const token = await secretAgent().clientCredentials({ resource: RESOURCE, scope: ['repo:read', 'repo:write'] });

    assert.equal(server.requests.length, 1);
    const request = server.requests[0] as RecordedRequest;
    assert.equal(request.method, 'POST');
    assert.equal(request.path, '/token');
    assert.match(request.headers['content-type'] ?? '', /^application\/x-www-form-urlencoded/);
    assert.deepEqual(decodeBasicCredentials(request), { clientId: 'agent:7 ü', clientSecret: 's3cr+t:/%' });
    assert.deepEqual(formParameters(request), {
      grant_type: 'client_credentials',
      resource: RESOURCE,
      scope: 'repo:read repo:write',
    });

    assert.equal(token.accessToken, 'at-123');
    assert.equal(token.tokenType, 'Bearer');
    assert.equal(token.expiresIn, 600);
    assert.ok(token.expiresAt.getTime() >= before + 600_000);
    assert.ok(token.expiresAt.getTime() <= Date.now() + 600_000);
    assert.equal(token.scope, 'repo:read');
    assert.equal(token.refreshToken, undefined);
  });

  it('omits scope when none is requested', async () => {
    server.handler = () => tokenReply({ scope: undefined });

    const token = await secretAgent().clientCredentials({ resource: RESOURCE });

    assert.deepEqual(formParameters(server.requests[0] as RecordedRequest), {
      grant_type: 'client_credentials',
      resource: RESOURCE,
    });
    assert.equal(token.scope, undefined);
  });

  it('sends a refresh_token request and returns the new refresh token', async () => {
    server.handler = () => tokenReply({ refresh_token: 'rt-2' });

    const token = await secretAgent().refresh({ refreshToken: 'rt-1', scope: 'repo:read' });

    assert.deepEqual(formParameters(server.requests[0] as RecordedRequest), {
      grant_type: 'refresh_token',
      refresh_token: 'rt-1',
      scope: 'repo:read',
    });
    assert.equal(token.refreshToken, 'rt-2');
  });

  it('sends an RFC 8693 token exchange request', async () => {
    server.handler = () => tokenReply({ issued_token_type: ACCESS_TOKEN_TYPE });

    const token = await secretAgent().exchangeToken({
      subjectToken: 'person-token',
      actorToken: 'agent-token',
      resource: RESOURCE,
      scope: 'repo:read',
    });

    assert.deepEqual(formParameters(server.requests[0] as RecordedRequest), {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'person-token',
      subject_token_type: ACCESS_TOKEN_TYPE,
      actor_token: 'agent-token',
      actor_token_type: ACCESS_TOKEN_TYPE,
      resource: RESOURCE,
      scope: 'repo:read',
    });
    assert.equal(token.issuedTokenType, ACCESS_TOKEN_TYPE);
  });

  it('omits actor parameters without an actor token', async () => {
    server.handler = () => tokenReply({ issued_token_type: ACCESS_TOKEN_TYPE });

    await secretAgent().exchangeToken({ subjectToken: 'person-token', resource: RESOURCE });

    const parameters = formParameters(server.requests[0] as RecordedRequest);
    assert.equal(parameters.actor_token, undefined);
    assert.equal(parameters.actor_token_type, undefined);
  });

  for (const [name, issuedTokenType] of [['no issued_token_type', undefined], ['another issued_token_type', 'urn:ietf:params:oauth:token-type:refresh_token']] as const) {
    it(`rejects an exchange response with ${name}`, async () => {
      server.handler = () => tokenReply(issuedTokenType === undefined ? {} : { issued_token_type: issuedTokenType });

      const error = await secretAgent().exchangeToken({ subjectToken: 'person-token', resource: RESOURCE }).then(
        () => assert.fail('expected the call to throw'),
        (caught: unknown) => caught,
      );

      assert.ok(error instanceof InvalidResponseError);
      assert.equal(error.message, `Token exchange response has issued_token_type ${String(issuedTokenType)}, expected ${ACCESS_TOKEN_TYPE}`);
    });
  }

  it('fetches the metadata once for many requests', async () => {
    server.handler = () => tokenReply();
    const agent = secretAgent();

    await agent.clientCredentials({ resource: RESOURCE });
    await agent.clientCredentials({ resource: RESOURCE });

    assert.equal(server.metadataRequestCount, 1);
    assert.equal(server.requests.length, 2);
  });

  it('throws TokenEndpointError without retrying', async () => {
    server.handler = () => ({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'The refresh token was already used.' },
    });

    const error = await secretAgent().refresh({ refreshToken: 'rt-secret-value' }).catch((rejection: unknown) => rejection);

    assert.ok(error instanceof TokenEndpointError);
    assert.equal(error.error, 'invalid_grant');
    assert.equal(error.description, 'The refresh token was already used.');
    assert.equal(error.status, 400);
    assert.ok(!error.message.includes('rt-secret-value'));
    assert.ok(!error.message.includes('s3cr+t'));
    assert.equal(server.requests.length, 1);
  });

  it('throws TokenEndpointError for 401 invalid_client', async () => {
    server.handler = () => ({ status: 401, body: { error: 'invalid_client' }, headers: { 'www-authenticate': 'Basic' } });

    const error = await secretAgent().clientCredentials({ resource: RESOURCE }).catch((rejection: unknown) => rejection);

    assert.ok(error instanceof TokenEndpointError);
    assert.equal(error.error, 'invalid_client');
    assert.equal(error.description, undefined);
    assert.equal(error.status, 401);
    assert.equal(server.requests.length, 1);
  });

  it('reports server_error for an error without a JSON body', async () => {
    server.handler = () => ({ status: 502, body: 'Bad Gateway' });

    const error = await secretAgent().clientCredentials({ resource: RESOURCE }).catch((rejection: unknown) => rejection);

    assert.ok(error instanceof TokenEndpointError);
    assert.equal(error.error, 'server_error');
    assert.equal(error.status, 502);
  });

  it('does not follow a redirect from the token endpoint', async () => {
    server.handler = (request) =>
      request.path === '/token' ? { status: 307, headers: { location: `${server.issuer}/elsewhere` } } : tokenReply();

    const error = await secretAgent().clientCredentials({ resource: RESOURCE }).catch((rejection: unknown) => rejection);

    assert.ok(error instanceof TokenEndpointError);
    assert.equal(error.status, 307);
    assert.deepEqual(server.requests.map((request) => request.path), ['/token']);
  });

  for (const [name, body] of [
    ['no access_token', { token_type: 'Bearer', expires_in: 60 }],
    ['a non-Bearer token_type', { access_token: 'at', token_type: 'DPoP', expires_in: 60 }],
    ['no expires_in', { access_token: 'at', token_type: 'Bearer' }],
  ] as const) {
    it(`rejects a response with ${name}`, async () => {
      server.handler = () => ({ status: 200, body });
      await assert.rejects(secretAgent().clientCredentials({ resource: RESOURCE }), InvalidResponseError);
    });
  }

  it('accepts token_type in any case', async () => {
    server.handler = () => tokenReply({ token_type: 'bearer' });
    const token = await secretAgent().clientCredentials({ resource: RESOURCE });
    assert.equal(token.tokenType, 'Bearer');
  });

  it('rejects metadata naming another issuer', async () => {
    server.publishedIssuer = 'http://127.0.0.1:1';

    await assert.rejects(secretAgent().clientCredentials({ resource: RESOURCE }), (error: unknown) => {
      assert.ok(error instanceof InvalidResponseError);
      assert.match(error.message, /names issuer/);
      return true;
    });
    assert.equal(server.requests.length, 0);
  });
});

describe('MandateAgent with private_key_jwt', () => {
  it('signs a fresh client assertion for each request', async () => {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const agent = new MandateAgent({ issuer: server.issuer, clientId: 'agent-7', privateKey, keyId: 'key-1' });
    server.handler = () => tokenReply();

    await agent.clientCredentials({ resource: RESOURCE });
    await agent.clientCredentials({ resource: RESOURCE });

    const jtis = new Set<string>();
    for (const request of server.requests) {
      assert.equal(request.headers.authorization, undefined);
      const parameters = formParameters(request);
      assert.equal(parameters.client_assertion_type, CLIENT_ASSERTION_TYPE);
      assert.equal(parameters.client_id, 'agent-7');
      assert.equal(parameters.grant_type, 'client_credentials');

      const assertion = parameters.client_assertion as string;
      const { payload, protectedHeader } = await jwtVerify(assertion, publicKey, {
        issuer: 'agent-7',
        subject: 'agent-7',
        audience: server.issuer,
        algorithms: ['EdDSA'],
        requiredClaims: ['jti', 'iat', 'exp'],
      });
      assert.equal(protectedHeader.kid, 'key-1');
      assert.ok((payload.exp as number) - (payload.iat as number) <= 300, 'assertion lifetime exceeds 5 minutes');
      jtis.add(payload.jti as string);
    }
    assert.equal(jtis.size, 2, 'each assertion needs a unique jti');
  });

  it('infers ES256 from a P-256 KeyObject', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const agent = new MandateAgent({ issuer: server.issuer, clientId: 'agent-7', privateKey });
    server.handler = () => tokenReply();

    await agent.clientCredentials({ resource: RESOURCE });

    const assertion = formParameters(server.requests[0] as RecordedRequest).client_assertion as string;
    const { protectedHeader } = await jwtVerify(assertion, publicKey, { algorithms: ['ES256'] });
    assert.equal(protectedHeader.kid, undefined);
  });

  it('infers RS256 and takes kid from a private JWK', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const privateJwk = { ...(await exportJWK(privateKey)), kid: 'rsa-key' };
    const agent = new MandateAgent({ issuer: server.issuer, clientId: 'agent-7', privateKey: privateJwk });
    server.handler = () => tokenReply();

    await agent.clientCredentials({ resource: RESOURCE });

    const assertion = formParameters(server.requests[0] as RecordedRequest).client_assertion as string;
    assert.deepEqual(decodeProtectedHeader(assertion), { alg: 'RS256', kid: 'rsa-key' });
    await jwtVerify(assertion, publicKey, { algorithms: ['RS256'] });
  });

  it('requires privateKeyAlg for an unsupported key type', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    assert.throws(
      () => new MandateAgent({ issuer: server.issuer, clientId: 'agent-7', privateKey }),
      /pass privateKeyAlg/,
    );
  });
});

describe('MandateAgent options', () => {
  it('rejects both a secret and a key', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    assert.throws(
      () => new MandateAgent({ issuer: server.issuer, clientId: 'agent-7', clientSecret: 's', privateKey }),
      /exactly one of clientSecret/,
    );
  });

  it('rejects neither a secret nor a key', () => {
    assert.throws(() => new MandateAgent({ issuer: server.issuer, clientId: 'agent-7' }), /exactly one of clientSecret/);
  });

  it('rejects an http issuer on a non-loopback host', () => {
    assert.throws(
      () => new MandateAgent({ issuer: 'http://mandate.example.test', clientId: 'agent-7', clientSecret: 's' }),
      /must use https/,
    );
  });
});
