import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, clientCredentialsToken, type AdminApi } from './admin-client.ts';
import { issueAccessToken } from '../../src/oauth/access-token.ts';
import { issueIdToken } from '../../src/oauth/id-token.ts';
import { createUserRecord } from '../../src/admin/users.ts';
import { createClientRecord } from '../../src/admin/clients.ts';
import { createResourceRecord } from '../../src/admin/resources.ts';
import { createRoleRecord } from '../../src/admin/roles.ts';
import { disableClient } from '../../src/agents/clients.ts';

describe('admin API authentication', () => {
  let server: TestServer;
  let api: AdminApi;

  before(async () => {
    server = await startTestServer();
    api = await adminApi(server);
  });
  after(async () => server.stop());

  async function get(path: string, authorization?: string) {
    const response = await fetch(`${server.url}/admin/v1${path}`, { headers: authorization === undefined ? {} : { authorization } });
    return { status: response.status, type: response.headers.get('content-type') ?? '', challenge: response.headers.get('www-authenticate'), json: (await response.json()) as Record<string, unknown> };
  }

  test('admin token is accepted', async () => {
    const response = await api.call('GET', '/users');
    assert.equal(response.status, 200);
    assert.deepEqual(response.json.items, []);
  });

  test('missing token is 401 with a Bearer challenge', async () => {
    const response = await get('/users');
    assert.equal(response.status, 401);
    assert.match(response.type, /^application\/problem\+json/);
    assert.equal(response.challenge, 'Bearer realm="mandate"');
    assert.equal(response.json.status, 401);
  });

  test('missing token on a POST is 401, not a body error', async () => {
    const response = await fetch(`${server.url}/admin/v1/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer /);
  });

  test('malformed token is 401 invalid_token', async () => {
    const response = await get('/users', 'Bearer not.a.token');
    assert.equal(response.status, 401);
    assert.match(response.challenge ?? '', /^Bearer .*error="invalid_token"/);
    assert.match(response.type, /^application\/problem\+json/);
  });

  test('other authorization scheme is 401', async () => {
    const response = await get('/users', `Basic ${Buffer.from('a:b').toString('base64')}`);
    assert.equal(response.status, 401);
    assert.equal(response.challenge, 'Bearer realm="mandate"');
  });

  test('ID token is 401', async () => {
    const user = await createUserRecord(server.ctx, { username: 'idtoken-user', password: 'long enough password' }, 'test');
    const idToken = await issueIdToken(server.ctx, { user, clientId: api.clientId, nonce: null, authTime: Math.floor(Date.now() / 1000) });
    const response = await get('/users', `Bearer ${idToken}`);
    assert.equal(response.status, 401);
    assert.match(response.challenge ?? '', /error="invalid_token"/);
  });

  test('token for another audience is 401', async () => {
    await createRoleRecord(server.ctx, { name: 'reader', permissions: [{ resource: '*', action: '*' }] }, 'test');
    await createResourceRecord(server.ctx, { name: 'notes', identifier: 'https://notes.example/api', actions: [{ name: 'read' }] }, 'test');
    const agent = await createClientRecord(server.ctx, 'agent', { name: 'audience-agent', roles: ['reader'] }, 'test');
    const issued = await clientCredentialsToken(server, agent.client_id, agent.client_secret ?? '', 'https://notes.example/api');
    assert.equal(issued.status, 200, JSON.stringify(issued.body));

    const response = await get('/users', `Bearer ${String(issued.body.access_token)}`);
    assert.equal(response.status, 401);
    assert.match(response.challenge ?? '', /error="invalid_token"/);
  });

  test('agent cannot obtain an admin token', async () => {
    const agent = await createClientRecord(server.ctx, 'agent', { name: 'greedy-agent' }, 'test');
    const issued = await clientCredentialsToken(server, agent.client_id, agent.client_secret ?? '', `${server.issuer}/admin`);
    assert.equal(issued.status, 400);
  });

  // No client can obtain an admin-audience token without the admin scope at /token, so the
  // token is signed here with the server's own access token key.
  test('admin audience without admin scope is 403', async () => {
    const { token } = await issueAccessToken(server.ctx, { subject: api.clientId, clientId: api.clientId, audience: `${server.issuer}/admin`, scope: ['openid'], lifetimeSeconds: 60 });
    const response = await get('/users', `Bearer ${token}`);
    assert.equal(response.status, 403);
    assert.match(response.type, /^application\/problem\+json/);
    assert.match(response.challenge ?? '', /error="insufficient_scope"/);
    assert.match(response.challenge ?? '', /scope="mandate:admin"/);
  });

  test('admin scope held by an agent is 403', async () => {
    const agent = await createClientRecord(server.ctx, 'agent', { name: 'scoped-agent' }, 'test');
    const { token } = await issueAccessToken(server.ctx, { subject: agent.client_id, clientId: agent.client_id, audience: `${server.issuer}/admin`, scope: ['mandate:admin'], lifetimeSeconds: 60 });
    const response = await get('/users', `Bearer ${token}`);
    assert.equal(response.status, 403);
  });

  test('token of a disabled admin client is 403', async () => {
    const { token } = await issueAccessToken(server.ctx, { subject: api.clientId, clientId: api.clientId, audience: `${server.issuer}/admin`, scope: ['mandate:admin'], lifetimeSeconds: 60 });
    await disableClient(server.ctx, api.clientId);
    const response = await get('/users', `Bearer ${token}`);
    assert.equal(response.status, 403);
  });

  test('OpenAPI document is public', async () => {
    const response = await fetch(`${server.url}/admin/v1/openapi.json`);
    assert.equal(response.status, 200);
    const document = (await response.json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>> };
    assert.equal(document.openapi, '3.1.0');
    const createUser = document.paths['/admin/v1/users']?.post;
    assert.ok(createUser?.requestBody?.content['application/json']?.schema.properties.password);
    assert.ok(document.paths['/admin/v1/audit/verify']?.get);
  });
});
