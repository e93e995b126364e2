import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { createClient } from '../../src/agents/clients.ts';
import { issueAccessToken } from '../../src/oauth/access-token.ts';
import { newId, nowSeconds } from '../../src/store/ids.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { FORM, assertNoUnexpectedErrors, assertResponse, basicAuth, hostileTokens, send, snapshot, type Expected } from './requests.ts';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const BASIC_CHALLENGE = /^Basic realm="mandate"/;

interface Case extends Expected {
  name: string;
  method?: string;
  headers?: Record<string, string>;
  /** A form body as pairs (names may repeat), or a raw string. */
  body?: Array<[string, string]> | string;
  /** The client authenticates with HTTP Basic unless this is false. */
  authenticate?: boolean;
}

describe('token endpoint rejects hostile requests', () => {
  let server: TestServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let agentBasic: string;
  let keyClientId: string;
  let privateKey: CryptoKey;
  let tokens: Awaited<ReturnType<typeof hostileTokens>>;
  let subjectToken: string;

  before(async () => {
    server = await startTestServer();
    world = await seedWorld(server.ctx);
    agentBasic = basicAuth(world.agent.client.client_id, world.agent.clientSecret ?? '');

    const pair = await generateKeyPair('EdDSA');
    privateKey = pair.privateKey;
    const keyClient = await createClient(server.ctx, { kind: 'agent', name: 'Key agent', jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1' }] } });
    keyClientId = keyClient.client.client_id;

    tokens = await hostileTokens(server, world.resource.identifier, world.alice.id, world.app.client.client_id);
    subjectToken = (await issueAccessToken(server.ctx, { subject: world.alice.id, clientId: world.app.client.client_id, audience: world.resource.identifier, scope: ['mail.read'], lifetimeSeconds: 600 })).token;
  });
  after(async () => {
    assertNoUnexpectedErrors(server);
    await server.stop();
  });

  async function assertion(claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'EdDSA', kid: 'k1' }): Promise<string> {
    const now = nowSeconds();
    return new SignJWT({ iss: keyClientId, sub: keyClientId, aud: `${server.issuer}/token`, jti: newId('jti'), iat: now, exp: now + 60, ...claims }).setProtectedHeader(header as { alg: string }).sign(privateKey);
  }

  function exchange(extra: Array<[string, string]>, subject = subjectToken): Array<[string, string]> {
    return [['grant_type', TOKEN_EXCHANGE], ['subject_token', subject], ['subject_token_type', ACCESS_TOKEN_TYPE], ...extra];
  }

  async function cases(): Promise<Case[]> {
    const mail = world.resource.identifier;
    const noneAssertion = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: keyClientId, sub: keyClientId, aud: `${server.issuer}/token`, jti: 'x', exp: nowSeconds() + 60 })).toString('base64url')}.`;
    const nulSubject = `${Buffer.from('{"alg":"EdDSA"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'agt_\u0000' })).toString('base64url')}.c2ln`;
    const otherClient = await assertion({ sub: world.agent.client.client_id, iss: world.agent.client.client_id });

    return [
      // Media type and body shape (RFC 6749 §3.2: the endpoint takes a form).
      { name: 'no content type', headers: {}, body: 'grant_type=client_credentials', status: 415, error: 'invalid_request' },
      { name: 'text/plain body', headers: { 'content-type': 'text/plain' }, body: 'grant_type=client_credentials', status: 400, error: 'invalid_request' },
      { name: 'JSON instead of a form', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', resource: mail }), status: 400, error: 'invalid_request' },
      { name: 'malformed JSON', headers: { 'content-type': 'application/json' }, body: '{"grant_type":', status: 400, error: 'invalid_request' },
      { name: 'empty JSON body', headers: { 'content-type': 'application/json' }, body: '', status: 400, error: 'invalid_request' },
      { name: 'multipart body', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: '--x\r\n\r\n--x--', status: 415, error: 'invalid_request' },
      { name: 'empty form', body: '', status: 400, error: 'invalid_request' },
      { name: 'form over 64 KiB', body: `grant_type=client_credentials&pad=${'x'.repeat(70_000)}`, status: 413, error: 'invalid_request' },
      { name: 'form with only ampersands', body: '&&&=&', status: 400, error: 'invalid_request' },

      // grant_type
      { name: 'grant_type missing', body: [['resource', mail]], status: 400, error: 'invalid_request' },
      { name: 'grant_type repeated', body: [['grant_type', 'client_credentials'], ['grant_type', 'client_credentials']], status: 400, error: 'invalid_request' },
      { name: 'password grant', body: [['grant_type', 'password'], ['username', 'alice'], ['password', 'x']], status: 400, error: 'unsupported_grant_type' },
      { name: 'implicit grant', body: [['grant_type', 'implicit']], status: 400, error: 'unsupported_grant_type' },
      { name: 'grant_type __proto__', body: [['grant_type', '__proto__']], status: 400, error: 'unsupported_grant_type' },
      { name: 'grant_type toString', body: [['grant_type', 'toString']], status: 400, error: 'unsupported_grant_type' },
      { name: 'grant_type 10 KB long', body: [['grant_type', 'g'.repeat(10_000)]], status: 400, error: 'unsupported_grant_type' },
      { name: 'grant_type bad percent-encoding', body: 'grant_type=%zz%E0%A4', status: 400, error: 'unsupported_grant_type' },
      { name: 'grant_type with NUL', body: 'grant_type=client_credentials%00', status: 400, error: 'invalid_request' },
      { name: 'NUL in a parameter name', body: 'grant_type=client_credentials&a%00b=1', status: 400, error: 'invalid_request' },
      { name: 'unknown grant unauthenticated', authenticate: false, body: [['grant_type', 'password']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },

      // Client authentication (RFC 6749 §2.3, §5.2: invalid_client is 401 with a challenge).
      { name: 'no client authentication', authenticate: false, body: [['grant_type', 'client_credentials'], ['resource', mail]], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Basic not base64', authenticate: false, headers: { authorization: 'Basic ***' }, body: [['grant_type', 'client_credentials']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Basic without colon', authenticate: false, headers: { authorization: `Basic ${Buffer.from('agent-no-colon').toString('base64')}` }, body: [['grant_type', 'client_credentials']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Basic with no credentials', authenticate: false, headers: { authorization: 'Basic' }, body: [['grant_type', 'client_credentials']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Basic with empty id and secret', authenticate: false, headers: { authorization: `Basic ${Buffer.from(':').toString('base64')}` }, body: [['grant_type', 'client_credentials']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Basic with bad percent-encoding', authenticate: false, headers: { authorization: `Basic ${Buffer.from('%zz:%zz').toString('base64')}` }, body: [['grant_type', 'client_credentials']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Basic with NUL in client_id', authenticate: false, headers: { authorization: `Basic ${Buffer.from('agt_%00:secret').toString('base64')}` }, body: [['grant_type', 'client_credentials']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Basic with invalid UTF-8', authenticate: false, headers: { authorization: `Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0xc3]).toString('base64')}` }, body: [['grant_type', 'client_credentials']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Basic with wrong secret', authenticate: false, headers: { authorization: basicAuth(world.agent.client.client_id, 'wrong') }, body: [['grant_type', 'client_credentials']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Basic with unknown client', authenticate: false, headers: { authorization: basicAuth('agt_unknown', 'x') }, body: [['grant_type', 'client_credentials']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Basic with 10 KB client_id', authenticate: false, headers: { authorization: basicAuth('a'.repeat(10_000), 'x') }, body: [['grant_type', 'client_credentials']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Bearer instead of Basic', authenticate: false, headers: { authorization: `Bearer ${subjectToken}` }, body: [['grant_type', 'client_credentials']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'client_secret in the body', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_id', world.agent.client.client_id], ['client_secret', world.agent.clientSecret ?? '']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'Basic and client_assertion together', body: [['grant_type', 'client_credentials'], ['client_assertion_type', JWT_BEARER], ['client_assertion', await assertion({})]], status: 400, error: 'invalid_request' },
      { name: 'client_assertion repeated', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_assertion_type', JWT_BEARER], ['client_assertion', 'a.b.c'], ['client_assertion', 'a.b.c']], status: 400, error: 'invalid_request' },
      { name: 'client_assertion not a JWT', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_assertion_type', JWT_BEARER], ['client_assertion', 'garbage']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'client_assertion bad base64 parts', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_assertion_type', JWT_BEARER], ['client_assertion', '!!.??.**']], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'client_assertion alg none', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_assertion_type', JWT_BEARER], ['client_assertion', noneAssertion]], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'client_assertion HS256 header', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_assertion_type', JWT_BEARER], ['client_assertion', (await assertion({})).replace(/^[^.]+/, Buffer.from('{"alg":"HS256"}').toString('base64url'))]], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'client_assertion with NUL subject', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_assertion_type', JWT_BEARER], ['client_assertion', nulSubject]], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'client_assertion for a secret client', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_assertion_type', JWT_BEARER], ['client_assertion', otherClient]], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'client_assertion wrong audience', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_assertion_type', JWT_BEARER], ['client_assertion', await assertion({ aud: 'https://elsewhere.example' })]], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'client_assertion_type wrong', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_assertion_type', 'urn:x'], ['client_assertion', await assertion({})]], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'client_assertion_type alone', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_assertion_type', JWT_BEARER]], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },
      { name: 'client_id differs from assertion', authenticate: false, body: [['grant_type', 'client_credentials'], ['client_id', 'agt_other'], ['client_assertion_type', JWT_BEARER], ['client_assertion', await assertion({})]], status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE },

      // authorization_code (RFC 6749 §4.1.3)
      { name: 'code missing', body: [['grant_type', 'authorization_code'], ['redirect_uri', world.redirectUri], ['code_verifier', 'v'.repeat(43)]], status: 400, error: 'invalid_request' },
      { name: 'code repeated', body: [['grant_type', 'authorization_code'], ['code', 'a'], ['code', 'b'], ['redirect_uri', world.redirectUri], ['code_verifier', 'v'.repeat(43)]], status: 400, error: 'invalid_request' },
      { name: 'code unknown', body: [['grant_type', 'authorization_code'], ['code', 'unknown'], ['redirect_uri', world.redirectUri], ['code_verifier', 'v'.repeat(43)]], status: 400, error: 'invalid_grant' },
      { name: 'code 60 KB long', body: [['grant_type', 'authorization_code'], ['code', 'c'.repeat(60_000)], ['redirect_uri', world.redirectUri], ['code_verifier', 'v'.repeat(43)]], status: 400, error: 'invalid_grant' },
      { name: 'redirect_uri missing', body: [['grant_type', 'authorization_code'], ['code', 'unknown'], ['code_verifier', 'v'.repeat(43)]], status: 400, error: 'invalid_request' },
      { name: 'code_verifier missing', body: [['grant_type', 'authorization_code'], ['code', 'unknown'], ['redirect_uri', world.redirectUri]], status: 400, error: 'invalid_request' },

      // refresh_token (RFC 6749 §6)
      { name: 'refresh_token missing', body: [['grant_type', 'refresh_token']], status: 400, error: 'invalid_request' },
      { name: 'refresh_token repeated', body: [['grant_type', 'refresh_token'], ['refresh_token', 'a'], ['refresh_token', 'b']], status: 400, error: 'invalid_request' },
      { name: 'refresh_token unknown', body: [['grant_type', 'refresh_token'], ['refresh_token', 'unknown']], status: 400, error: 'invalid_grant' },
      { name: 'refresh_token is a JWT', body: [['grant_type', 'refresh_token'], ['refresh_token', subjectToken]], status: 400, error: 'invalid_grant' },
      { name: 'refresh_token bad scope', body: [['grant_type', 'refresh_token'], ['refresh_token', 'unknown'], ['scope', 'a"b']], status: 400, error: 'invalid_scope' },

      // client_credentials (RFC 6749 §4.4, RFC 8707)
      { name: 'resource missing', body: [['grant_type', 'client_credentials']], status: 400, error: 'invalid_target' },
      { name: 'resource repeated', body: [['grant_type', 'client_credentials'], ['resource', mail], ['resource', mail]], status: 400, error: 'invalid_target' },
      { name: 'resource relative', body: [['grant_type', 'client_credentials'], ['resource', '/mail']], status: 400, error: 'invalid_target' },
      { name: 'resource with fragment', body: [['grant_type', 'client_credentials'], ['resource', `${mail}#x`]], status: 400, error: 'invalid_target' },
      { name: 'resource unknown', body: [['grant_type', 'client_credentials'], ['resource', 'https://unknown.example/api']], status: 400, error: 'invalid_target' },
      { name: 'resource 60 KB long', body: [['grant_type', 'client_credentials'], ['resource', `https://x.example/${'r'.repeat(60_000)}`]], status: 400, error: 'invalid_target' },
      { name: 'scope with quote', body: [['grant_type', 'client_credentials'], ['resource', mail], ['scope', 'mail.read "x"']], status: 400, error: 'invalid_scope' },
      { name: 'scope with control character', body: [['grant_type', 'client_credentials'], ['resource', mail], ['scope', 'mail.read\u0007']], status: 400, error: 'invalid_scope' },
      { name: 'scope repeated', body: [['grant_type', 'client_credentials'], ['resource', mail], ['scope', 'mail.read'], ['scope', 'mail.send']], status: 400, error: 'invalid_request' },
      { name: 'scope unknown', body: [['grant_type', 'client_credentials'], ['resource', mail], ['scope', 'mail.delete']], status: 400, error: 'invalid_scope' },
      { name: 'admin scope for an agent', body: [['grant_type', 'client_credentials'], ['resource', `${server.issuer}/admin`]], status: 400, error: 'invalid_target' },
      { name: 'application uses client_credentials', authenticate: false, headers: { authorization: basicAuth(world.app.client.client_id, world.app.clientSecret ?? '') }, body: [['grant_type', 'client_credentials'], ['resource', mail]], status: 400, error: 'unauthorized_client' },

      // Token exchange (RFC 8693 §2.2.2: a bad subject or actor token is invalid_request).
      { name: 'subject_token missing', body: [['grant_type', TOKEN_EXCHANGE], ['subject_token_type', ACCESS_TOKEN_TYPE]], status: 400, error: 'invalid_request' },
      { name: 'subject_token_type missing', body: [['grant_type', TOKEN_EXCHANGE], ['subject_token', subjectToken]], status: 400, error: 'invalid_request' },
      { name: 'subject_token_type id_token', body: [['grant_type', TOKEN_EXCHANGE], ['subject_token', subjectToken], ['subject_token_type', 'urn:ietf:params:oauth:token-type:id_token']], status: 400, error: 'invalid_request' },
      { name: 'subject_token repeated', body: exchange([['subject_token', subjectToken]]), status: 400, error: 'invalid_request' },
      { name: 'subject_token garbage', body: exchange([], tokens.garbage), status: 400, error: 'invalid_request' },
      { name: 'subject_token two parts', body: exchange([], tokens.twoParts), status: 400, error: 'invalid_request' },
      { name: 'subject_token unsigned', body: exchange([], tokens.unsigned), status: 400, error: 'invalid_request' },
      { name: 'subject_token alg none at+jwt', body: exchange([], tokens.noneTyped), status: 400, error: 'invalid_request' },
      { name: 'subject_token foreign key', body: exchange([], tokens.foreign), status: 400, error: 'invalid_request' },
      { name: 'subject_token typ JWT', body: exchange([], tokens.wrongTyp), status: 400, error: 'invalid_request' },
      { name: 'subject_token expired', body: exchange([], tokens.expired), status: 400, error: 'invalid_request' },
      { name: 'subject_token 60 KB long', body: exchange([], `${'a'.repeat(30_000)}.${'b'.repeat(30_000)}.c`), status: 400, error: 'invalid_request' },
      { name: 'actor_token without type', body: exchange([['actor_token', subjectToken]]), status: 400, error: 'invalid_request' },
      { name: 'actor_token_type without token', body: exchange([['actor_token_type', ACCESS_TOKEN_TYPE]]), status: 400, error: 'invalid_request' },
      { name: 'actor_token garbage', body: exchange([['actor_token', tokens.garbage], ['actor_token_type', ACCESS_TOKEN_TYPE]]), status: 400, error: 'invalid_request' },
      { name: 'actor_token alg none', body: exchange([['actor_token', tokens.noneTyped], ['actor_token_type', ACCESS_TOKEN_TYPE]]), status: 400, error: 'invalid_request' },
      { name: 'actor_token of someone else', body: exchange([['actor_token', subjectToken], ['actor_token_type', ACCESS_TOKEN_TYPE]]), status: 400, error: 'invalid_request' },
      { name: 'requested_token_type refresh', body: exchange([['requested_token_type', 'urn:ietf:params:oauth:token-type:refresh_token']]), status: 400, error: 'invalid_request' },
      { name: 'exchange to another resource', body: exchange([['resource', 'https://unknown.example/api']]), status: 400, error: 'invalid_target' },
      { name: 'exchange with two audiences', body: exchange([['audience', mail], ['audience', 'https://other.example']]), status: 400, error: 'invalid_target' },
      { name: 'exchange widens scope', body: exchange([['scope', 'mail.read mail.send']]), status: 400, error: 'invalid_scope' },
      { name: 'exchange by an application', authenticate: false, headers: { authorization: basicAuth(world.app.client.client_id, world.app.clientSecret ?? '') }, body: exchange([]), status: 400, error: 'unauthorized_client' },

      // Methods
      { name: 'GET /token', method: 'GET', status: 404, error: 'invalid_request' },
      { name: 'PUT /token', method: 'PUT', body: [['grant_type', 'client_credentials']], status: 404, error: 'invalid_request' },
    ];
  }

  test('each case gets its RFC 6749 error and writes nothing', async () => {
    const tables = ['delegations', 'refresh_tokens', 'authorization_codes', 'client_assertion_ids', 'audit_log'] as const;
    const before = await snapshot(server.ctx, [...tables]);

    const table = await cases();
    assert.ok(table.length >= 80, `the table has ${table.length} cases`);
    for (const entry of table) {
      const headers: Record<string, string> = entry.headers ?? { 'content-type': FORM };
      if (entry.headers !== undefined && entry.body !== undefined && typeof entry.body !== 'string') headers['content-type'] ??= FORM;
      if (entry.authenticate !== false && headers.authorization === undefined) headers.authorization = agentBasic;
      const body = entry.body === undefined ? undefined : typeof entry.body === 'string' ? entry.body : new URLSearchParams(entry.body).toString();

      const response = await send(server, entry.method ?? 'POST', '/token', headers, body);
      assertResponse(response, entry, entry.name);
      if (entry.error !== 'invalid_client') assert.equal(response.headers['www-authenticate'], undefined, `${entry.name}: only invalid_client carries a Basic challenge`);
    }

    assert.deepEqual(await snapshot(server.ctx, [...tables]), before);
  });

  test('long unknown scopes are not echoed in full', async () => {
    const response = await send(server, 'POST', '/token', { 'content-type': FORM, authorization: agentBasic }, new URLSearchParams({ grant_type: 'client_credentials', resource: world.resource.identifier, scope: Array.from({ length: 50 }, (_, i) => `x${i}${'y'.repeat(1000)}`).join(' ') }).toString());
    assertResponse(response, { status: 400, error: 'invalid_scope' }, 'long scopes');
    assert.ok(response.text.length < 1000, `the error body is ${response.text.length} bytes`);
  });
});
