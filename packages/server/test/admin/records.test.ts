import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, exportJWK } from 'jose';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from './admin-client.ts';
import { readCredential } from '../../src/vault/connections.ts';

describe('admin API records', () => {
  let server: TestServer;
  let api: AdminApi;

  before(async () => {
    server = await startTestServer();
    api = await adminApi(server);
  });
  after(async () => server.stop());

  test('roles create and list', async () => {
    const created = await api.call('POST', '/roles', { name: 'support', description: 'Reads tickets', permissions: [{ resource: 'https://tickets.example/api', action: 'read' }, { resource: '*', action: 'profile' }] });
    assert.equal(created.status, 201);
    assert.equal(created.json.name, 'support');
    assert.equal((created.json.permissions as unknown[]).length, 2);

    const listed = await api.call('GET', '/roles');
    assert.equal(listed.status, 200);
    assert.deepEqual(
      (listed.json.items as Array<{ name: string }>).map((role) => role.name),
      ['support'],
    );
  });

  test('users create, list, grant, remove role, disable', async () => {
    const created = await api.call('POST', '/users', { username: 'alice', password: 'correct horse battery', display_name: 'Alice', email: 'alice@example.com', roles: ['support'] });
    assert.equal(created.status, 201);
    assert.equal(created.json.username, 'alice');
    assert.deepEqual(created.json.roles, ['support']);
    assert.equal(created.json.password_hash, undefined);
    assert.equal(created.json.password, undefined);

    const removed = await api.call('DELETE', '/users/alice/roles/support');
    assert.equal(removed.status, 200);
    assert.deepEqual(removed.json.roles, []);
    assert.equal((await api.call('DELETE', '/users/alice/roles/support')).status, 404);

    const granted = await api.call('POST', `/users/${String(created.json.id)}/roles`, { role: 'support' });
    assert.equal(granted.status, 200);
    assert.deepEqual(granted.json.roles, ['support']);

    const disabled = await api.call('POST', '/users/alice/disable');
    assert.equal(disabled.status, 200);
    assert.equal(disabled.json.status, 'disabled');

    const listed = await api.call('GET', '/users');
    const alice = (listed.json.items as Array<Record<string, unknown>>).find((user) => user.username === 'alice');
    assert.equal(alice?.status, 'disabled');
    assert.deepEqual(alice?.roles, ['support']);
  });

  test('duplicate user is 409', async () => {
    await api.call('POST', '/users', { username: 'bob', password: 'correct horse battery' });
    const duplicate = await api.call('POST', '/users', { username: 'bob', password: 'another long password' });
    assert.equal(duplicate.status, 409);
    assert.match(duplicate.type, /^application\/problem\+json/);
    assert.match(String(duplicate.json.detail), /bob/);
  });

  test('duplicate role is 409', async () => {
    const duplicate = await api.call('POST', '/roles', { name: 'support', permissions: [] });
    assert.equal(duplicate.status, 409);
  });

  test('agent with a secret returns it once', async () => {
    const created = await api.call('POST', '/agents', { name: 'mail-bot', owner: 'bob', redirect_uris: ['https://bot.example/callback', 'http://127.0.0.1:7777/cb'], roles: ['support'] });
    assert.equal(created.status, 201);
    assert.equal(created.json.kind, 'agent');
    assert.equal(created.json.token_endpoint_auth_method, 'client_secret_basic');
    assert.equal(typeof created.json.client_secret, 'string');
    assert.deepEqual(created.json.roles, ['support']);

    const listed = await api.call('GET', '/agents');
    const items = listed.json.items as Array<Record<string, unknown>>;
    assert.equal(items.length, 1);
    assert.equal(items[0]?.client_secret, undefined);
    assert.equal(items[0]?.secret_digest, undefined);
    assert.equal(JSON.stringify(listed.json).includes(String(created.json.client_secret)), false);
    assert.equal(
      server.logs.some((line) => line.includes(String(created.json.client_secret))),
      false,
    );
  });

  test('agent with a JWKS uses private_key_jwt', async () => {
    const { publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const jwk = await exportJWK(publicKey);
    const created = await api.call('POST', '/agents', { name: 'jwt-bot', jwks: { keys: [{ ...jwk, kid: 'k1' }] } });
    assert.equal(created.status, 201);
    assert.equal(created.json.token_endpoint_auth_method, 'private_key_jwt');
    assert.equal(created.json.client_secret, undefined);
  });

  test('agent grant, remove role and disable', async () => {
    const created = await api.call('POST', '/agents', { name: 'helper' });
    const clientId = String(created.json.client_id);
    assert.deepEqual((await api.call('POST', `/agents/${clientId}/roles`, { role: 'support' })).json.roles, ['support']);
    assert.deepEqual((await api.call('DELETE', `/agents/${clientId}/roles/support`)).json.roles, []);
    assert.equal((await api.call('POST', `/agents/${clientId}/disable`, {})).json.status, 'disabled');
    assert.equal((await api.call('POST', '/agents/agt_missing/disable')).status, 404);
  });

  test('duplicate agent name is 409', async () => {
    const duplicate = await api.call('POST', '/agents', { name: 'mail-bot' });
    assert.equal(duplicate.status, 409);
  });

  test('applications create, list and disable', async () => {
    const created = await api.call('POST', '/applications', { name: 'portal', redirect_uris: ['https://portal.example/cb'] });
    assert.equal(created.status, 201);
    assert.equal(created.json.kind, 'application');
    assert.equal(typeof created.json.client_secret, 'string');

    const listed = await api.call('GET', '/applications');
    assert.deepEqual(
      (listed.json.items as Array<{ name: string }>).map((app) => app.name),
      ['portal'],
    );
    assert.equal((await api.call('POST', `/applications/${String(created.json.client_id)}/disable`)).json.status, 'disabled');
    assert.equal((await api.call('GET', '/agents')).json.items instanceof Array, true);
  });

  test('resource gets the gateway identifier and defaults', async () => {
    const created = await api.call('POST', '/resources', {
      name: 'github',
      display_name: 'GitHub',
      upstream_base_url: 'https://api.github.com',
      actions: [
        { name: 'repo.read', description: 'Read repositories', method: 'GET', path_prefix: '/repos' },
        { name: 'repo.write', method: 'POST', path_prefix: '/repos', requires_approval: true },
      ],
    });
    assert.equal(created.status, 201);
    assert.equal(created.json.identifier, `${server.issuer}/gateway/github`);
    assert.equal(created.json.access_token_ttl_seconds, 600);
    assert.equal(created.json.upstream_auth, 'bearer');
    const actions = created.json.actions as Array<Record<string, unknown>>;
    assert.equal(actions.find((action) => action.name === 'repo.write')?.requires_approval, 1);

    const listed = await api.call('GET', '/resources');
    assert.deepEqual(
      (listed.json.items as Array<{ name: string }>).map((resource) => resource.name),
      ['github'],
    );
  });

  test('resource with its own identifier and header auth', async () => {
    const created = await api.call('POST', '/resources', { name: 'crm', identifier: 'https://crm.example/api', access_token_ttl_seconds: 1800, upstream_base_url: 'https://crm.example', upstream_auth: 'header:X-Api-Key' });
    assert.equal(created.status, 201);
    assert.equal(created.json.identifier, 'https://crm.example/api');
    assert.equal(created.json.upstream_auth, 'header:X-Api-Key');
    assert.equal(created.json.access_token_ttl_seconds, 1800);
  });

  test('token lifetime above 1800 seconds is rejected', async () => {
    const response = await api.call('POST', '/resources', { name: 'slow', upstream_base_url: 'https://slow.example', access_token_ttl_seconds: 1801 });
    assert.equal(response.status, 400);
    assert.match(response.type, /^application\/problem\+json/);
    assert.match(String(response.json.detail), /access_token_ttl_seconds: must be at most 1800 seconds/);
    assert.deepEqual((response.json['invalid-params'] as Array<{ name: string }>).map((param) => param.name), ['access_token_ttl_seconds']);
    assert.equal((await api.call('GET', '/resources')).json.items instanceof Array, true);
    const names = ((await api.call('GET', '/resources')).json.items as Array<{ name: string }>).map((resource) => resource.name);
    assert.equal(names.includes('slow'), false);
  });

  test('duplicate resource is 409 and nothing is half-written', async () => {
    const duplicate = await api.call('POST', '/resources', { name: 'github', upstream_base_url: 'https://other.example', actions: [{ name: 'x' }] });
    assert.equal(duplicate.status, 409);

    const sameIdentifier = await api.call('POST', '/resources', { name: 'crm2', identifier: 'https://crm.example/api', actions: [{ name: 'orphan' }] });
    assert.equal(sameIdentifier.status, 409);
    const orphans = await server.ctx.db.selectFrom('resource_actions').select('name').where('name', '=', 'orphan').execute();
    assert.deepEqual(orphans, []);
  });

  test('credential is stored encrypted and never returned', async () => {
    const secret = 'ghp_exampleUpstreamCredential123';
    const created = await api.call('PUT', '/users/bob/credentials/github', { credential: secret });
    assert.equal(created.status, 201);
    assert.equal(typeof created.json.id, 'string');
    assert.equal(JSON.stringify(created.json).includes(secret), false);

    const replaced = await api.call('PUT', '/users/bob/credentials/github', { credential: `${secret}-v2` });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.json.id, created.json.id);

    const listed = await api.call('GET', '/credentials?user=bob');
    assert.equal((listed.json.items as unknown[]).length, 1);
    assert.equal(JSON.stringify(listed.json).includes(secret), false);

    const stored = await server.ctx.db.selectFrom('connections').select('ciphertext').executeTakeFirstOrThrow();
    assert.equal(stored.ciphertext.includes(secret), false);
    const bob = await server.ctx.db.selectFrom('users').select('id').where('username', '=', 'bob').executeTakeFirstOrThrow();
    const resource = await server.ctx.db.selectFrom('resources').select('id').where('name', '=', 'github').executeTakeFirstOrThrow();
    assert.equal(await readCredential(server.ctx, { userId: bob.id, resourceId: resource.id }), `${secret}-v2`);

    const audit = await api.call('GET', '/audit?limit=1000');
    assert.equal(JSON.stringify(audit.json).includes(secret), false);
    assert.equal(
      server.logs.some((line) => line.includes(secret)),
      false,
    );
  });

  test('credential for unknown user or resource is 404', async () => {
    assert.equal((await api.call('PUT', '/users/nobody/credentials/github', { credential: 'x' })).status, 404);
    assert.equal((await api.call('PUT', '/users/bob/credentials/nothing', { credential: 'x' })).status, 404);
  });

  test('audit tail and verify', async () => {
    const first = await api.call('GET', '/audit?limit=2');
    assert.equal(first.status, 200);
    const items = first.json.items as Array<{ seq: number; event: { event: string; actor?: string } }>;
    assert.equal(items.length, 2);
    assert.equal(first.json.next_after, items[1]?.seq);

    const rest = await api.call('GET', `/audit?after=${String(first.json.next_after)}`);
    const events = (rest.json.items as Array<{ event: { event: string; actor?: string } }>).map((item) => item.event);
    assert.ok(events.some((event) => event.event === 'user.created' && event.actor === `client:${api.clientId}`));

    const verified = await api.call('GET', '/audit/verify');
    assert.equal(verified.status, 200);
    assert.equal(verified.json.ok, true);
  });
});
