import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from './admin-client.ts';
import { adminOperations } from '../../src/admin/api.ts';

interface Case {
  method: string;
  path: string;
  body: unknown;
  field: string;
}

describe('admin API input validation', () => {
  let server: TestServer;
  let api: AdminApi;
  let delegationId: string;
  let agentId: string;
  let appId: string;

  before(async () => {
    server = await startTestServer();
    api = await adminApi(server);
    await api.call('POST', '/roles', { name: 'r', permissions: [] });
    await api.call('POST', '/users', { username: 'carol', password: 'correct horse battery' });
    await api.call('POST', '/resources', { name: 'files', upstream_base_url: 'https://files.example', actions: [{ name: 'read' }] });
    agentId = String((await api.call('POST', '/agents', { name: 'a' })).json.client_id);
    appId = String((await api.call('POST', '/applications', { name: 'p', redirect_uris: ['https://p.example/cb'] })).json.client_id);
    delegationId = 'dlg_unknown';
  });
  after(async () => server.stop());

  function concretePath(path: string): string {
    return path
      .replace(':user', 'carol')
      .replace(':resource', 'files')
      .replace(':role', 'r')
      .replace(':client_id', path.startsWith('/applications') ? appId : agentId)
      .replace(':id', delegationId);
  }

  test('every operation with a body rejects malformed JSON, wrong types and unknown fields', async () => {
    const withBody = adminOperations.filter((operation) => operation.body !== undefined);
    assert.ok(withBody.length >= 12);

    for (const operation of withBody) {
      const path = concretePath(operation.path);
      const label = `${operation.method} ${operation.path}`;

      const malformed = await api.call(operation.method, path, '{"name": ');
      assert.equal(malformed.status, 400, `${label} malformed JSON`);
      assert.match(malformed.type, /^application\/problem\+json/, `${label} malformed JSON type`);

      const array = await api.call(operation.method, path, '[]');
      assert.equal(array.status, 400, `${label} array body`);
      assert.match(array.type, /^application\/problem\+json/);

      const unknown = await api.call(operation.method, path, { unexpected_field: true });
      assert.equal(unknown.status, 400, `${label} unknown field`);
      const names = (unknown.json['invalid-params'] as Array<{ name: string }>).map((param) => param.name);
      assert.ok(names.includes('unexpected_field'), `${label} names the unknown field: ${names.join(',')}`);
    }
  });

  const wrongTypes: Case[] = [
    { method: 'POST', path: '/users', body: { username: 'dave', password: 'short' }, field: 'password' },
    { method: 'POST', path: '/users', body: { username: 42, password: 'correct horse battery' }, field: 'username' },
    { method: 'POST', path: '/users', body: { username: 'dave', password: 'correct horse battery', email: 'not-an-email' }, field: 'email' },
    { method: 'POST', path: '/users', body: { username: 'dave', password: 'correct horse battery', roles: ['missing-role'] }, field: 'roles.0' },
    { method: 'POST', path: '/users/carol/roles', body: { role: 7 }, field: 'role' },
    { method: 'POST', path: '/users/carol/roles', body: { role: 'missing-role' }, field: 'role' },
    { method: 'POST', path: '/roles', body: { name: 'x', permissions: [{ resource: 'not a uri', action: 'read' }] }, field: 'permissions.0.resource' },
    { method: 'POST', path: '/roles', body: { name: 'x', permissions: 'all' }, field: 'permissions' },
    { method: 'POST', path: '/agents', body: { name: 'b', redirect_uris: ['/relative'] }, field: 'redirect_uris.0' },
    { method: 'POST', path: '/agents', body: { name: 'b', redirect_uris: ['https://x.example/cb#frag'] }, field: 'redirect_uris.0' },
    { method: 'POST', path: '/agents', body: { name: 'b', redirect_uris: ['http://evil.example/cb'] }, field: 'redirect_uris.0' },
    { method: 'POST', path: '/agents', body: { name: 'b', owner: 'nobody' }, field: 'owner' },
    { method: 'POST', path: '/agents', body: { name: 'b', jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AAAA', d: 'AAAA' }] } }, field: 'jwks.keys.0' },
    { method: 'POST', path: '/agents', body: { name: 'b', jwks: { keys: [{ kty: 'oct', k: 'AAAA' }] } }, field: 'jwks.keys.0.kty' },
    { method: 'POST', path: '/applications', body: { name: 'q' }, field: 'redirect_uris' },
    { method: 'POST', path: '/resources', body: { name: 'Bad Name', upstream_base_url: 'https://x.example' }, field: 'name' },
    { method: 'POST', path: '/resources', body: { name: 'noid' }, field: 'identifier' },
    { method: 'POST', path: '/resources', body: { name: 'ttl', upstream_base_url: 'https://x.example', access_token_ttl_seconds: '600' }, field: 'access_token_ttl_seconds' },
    { method: 'POST', path: '/resources', body: { name: 'ttl', upstream_base_url: 'https://x.example', access_token_ttl_seconds: 600.5 }, field: 'access_token_ttl_seconds' },
    { method: 'POST', path: '/resources', body: { name: 'auth', upstream_base_url: 'https://x.example', upstream_auth: 'basic' }, field: 'upstream_auth' },
    { method: 'POST', path: '/resources', body: { name: 'act', upstream_base_url: 'https://x.example', actions: [{ name: 'a', method: 'FETCH' }] }, field: 'actions.0.method' },
    { method: 'POST', path: '/resources', body: { name: 'act', upstream_base_url: 'https://x.example', actions: [{ name: 'a', path_prefix: 'no-slash' }] }, field: 'actions.0.path_prefix' },
    { method: 'POST', path: '/resources', body: { name: 'act', upstream_base_url: 'https://x.example', actions: [{ name: 'a' }, { name: 'a' }] }, field: 'actions' },
    { method: 'PUT', path: '/users/carol/credentials/files', body: { credential: '' }, field: 'credential' },
    { method: 'PUT', path: '/users/carol/credentials/files', body: { credential: 12345 }, field: 'credential' },
    { method: 'POST', path: '/delegations/dlg_x/revoke', body: { reason: 5 }, field: 'reason' },
  ];

  for (const item of wrongTypes) {
    test(`${item.method} ${item.path} rejects bad ${item.field}`, async () => {
      const response = await api.call(item.method, item.path, item.body);
      assert.equal(response.status, 400, JSON.stringify(response.json));
      assert.match(response.type, /^application\/problem\+json/);
      const names = (response.json['invalid-params'] as Array<{ name: string }>).map((param) => param.name);
      assert.ok(names.includes(item.field), `expected ${item.field} in ${names.join(',')}`);
      assert.match(String(response.json.detail), new RegExp(item.field.replace(/\./g, '\\.')));
    });
  }

  test('query parameters are validated', async () => {
    for (const [path, field] of [
      ['/audit?limit=abc', 'limit'],
      ['/audit?limit=5000', 'limit'],
      ['/audit?after=-1', 'after'],
      ['/delegations?active=maybe', 'active'],
      ['/delegations?user=nobody', 'user'],
      ['/users?page=2', 'page'],
      ['/credentials?colour=red', 'colour'],
    ] as const) {
      const response = await api.call('GET', path);
      assert.equal(response.status, 400, path);
      const names = (response.json['invalid-params'] as Array<{ name: string }>).map((param) => param.name);
      assert.ok(names.includes(field), `${path}: ${names.join(',')}`);
    }
  });

  test('wrong content type is a problem, not a 500', async () => {
    const xml = await api.call('POST', '/users', '<user/>', { 'content-type': 'application/xml' });
    assert.equal(xml.status, 415);
    assert.match(xml.type, /^application\/problem\+json/);

    const text = await api.call('POST', '/users', 'username=x', { 'content-type': 'text/plain' });
    assert.equal(text.status, 400);
    assert.match(text.type, /^application\/problem\+json/);
  });

  test('missing records in the path are 404', async () => {
    for (const [method, path] of [
      ['POST', '/users/nobody/disable'],
      ['POST', '/users/nobody/roles'],
      ['DELETE', '/users/carol/roles/missing-role'],
      ['POST', '/agents/agt_nothing/roles'],
      ['POST', '/delegations/dlg_nothing/revoke'],
      ['POST', '/users/nobody/revoke-delegations'],
      ['POST', '/agents/agt_nothing/revoke-delegations'],
      ['POST', `/agents/${'x'}/disable`],
    ] as const) {
      const response = await api.call(method, path, method === 'POST' && path.endsWith('/roles') ? { role: 'r' } : undefined);
      assert.equal(response.status, 404, `${method} ${path}: ${JSON.stringify(response.json)}`);
      assert.match(response.type, /^application\/problem\+json/);
    }
  });

  test('an application is not an agent', async () => {
    const response = await api.call('POST', `/agents/${appId}/disable`);
    assert.equal(response.status, 404);
  });

  test('no validation failure left a record behind', async () => {
    const users = (await api.call('GET', '/users')).json.items as Array<{ username: string }>;
    assert.deepEqual(
      users.map((user) => user.username),
      ['carol'],
    );
    const agents = (await api.call('GET', '/agents')).json.items as unknown[];
    assert.equal(agents.length, 1);
  });
});
