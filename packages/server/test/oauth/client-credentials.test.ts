import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function token(server: TestServer, body: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body) });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

describe('client_credentials grant (RFC 6749 §4.4)', () => {
  let server: TestServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let keyPair: Awaited<ReturnType<typeof generateKeyPair>>;
  let jwtAgent: string;

  before(async () => {
    server = await startTestServer();
    world = await seedWorld(server.ctx);
    keyPair = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(keyPair.publicKey)), kid: 'k1', alg: 'ES256' };
    const { createClient } = await import('../../src/agents/clients.ts');
    const created = await createClient(server.ctx, { kind: 'agent', name: 'JWT agent', jwks: { keys: [jwk] } });
    jwtAgent = created.client.client_id;
    await server.ctx.db.insertInto('client_roles').values({ client_id: jwtAgent, role_id: world.roles.reader }).execute();
  });
  after(() => server.stop());

  test('secret agent gets an RFC 9068 token', async () => {
    const result = await token(server, { grant_type: 'client_credentials', resource: world.resource.identifier }, { authorization: basic(world.agent.client.client_id, world.agent.clientSecret ?? '') });
    assert.equal(result.status, 200);
    assert.equal(result.headers.get('cache-control'), 'no-store');
    assert.equal(result.body.token_type, 'Bearer');
    assert.equal(result.body.expires_in, 600);
    assert.equal(result.body.scope, 'mail.read mail.send');

    const header = decodeProtectedHeader(result.body.access_token as string);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.alg, 'EdDSA');
    const claims = decodeJwt(result.body.access_token as string);
    assert.equal(claims.sub, world.agent.client.client_id);
    assert.equal(claims.aud, world.resource.identifier);
    assert.equal(claims.iss, server.issuer);
    assert.equal(typeof claims.jti, 'string');
  });

  test('wrong secret is invalid_client with a challenge', async () => {
    const result = await token(server, { grant_type: 'client_credentials', resource: world.resource.identifier }, { authorization: basic(world.agent.client.client_id, 'wrong') });
    assert.equal(result.status, 401);
    assert.equal(result.body.error, 'invalid_client');
    assert.match(result.headers.get('www-authenticate') ?? '', /^Basic /);
  });

  test('private_key_jwt agent authenticates once per jti', async () => {
    const assertion = await new SignJWT({ jti: 'assertion-1' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(jwtAgent)
      .setSubject(jwtAgent)
      .setAudience(server.issuer)
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(keyPair.privateKey);
    const body = { grant_type: 'client_credentials', resource: world.resource.identifier, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion };

    const first = await token(server, body);
    assert.equal(first.status, 200);
    assert.equal(first.body.scope, 'mail.read');

    const replay = await token(server, body);
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error, 'invalid_client');
  });

  test('openid-client private_key_jwt agent gets a token', async () => {
    const config = await client.discovery(new URL(server.issuer), jwtAgent, {}, client.PrivateKeyJwt({ key: keyPair.privateKey, kid: 'k1' }), { execute: [client.allowInsecureRequests] });
    const tokens = await client.clientCredentialsGrant(config, { resource: world.resource.identifier, scope: 'mail.read' });
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.scope, 'mail.read');
    assert.equal(decodeJwt(tokens.access_token).sub, jwtAgent);
  });

  test('scope outside the agent roles is refused', async () => {
    const result = await token(server, { grant_type: 'client_credentials', resource: world.resource.identifier, scope: 'mail.delete' }, { authorization: basic(world.agent.client.client_id, world.agent.clientSecret ?? '') });
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_scope');
  });

  test('unknown resource is invalid_target', async () => {
    const result = await token(server, { grant_type: 'client_credentials', resource: 'https://elsewhere.test/' }, { authorization: basic(world.agent.client.client_id, world.agent.clientSecret ?? '') });
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_target');
  });

  test('duplicated grant_type is invalid_request', async () => {
    const response = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(world.agent.client.client_id, world.agent.clientSecret ?? '') },
      body: `grant_type=client_credentials&grant_type=client_credentials&resource=${encodeURIComponent(world.resource.identifier)}`,
    });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: string }).error, 'invalid_request');
  });

  test('metadata and JWKS are published', async () => {
    const metadata = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    assert.equal(metadata.issuer, server.issuer);
    assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
    const oidc = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(oidc.jwks_uri, `${server.issuer}/jwks`);
    const jwks = (await (await fetch(`${server.issuer}/jwks`)).json()) as { keys: Array<Record<string, unknown>> };
    assert.deepEqual(jwks.keys.map((key) => key.alg).sort(), ['EdDSA', 'RS256']);
    assert.ok(jwks.keys.every((key) => key.d === undefined));
  });
});
