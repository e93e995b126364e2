import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { storeDelegation } from './fixtures.ts';
import { readAudit } from '../../src/audit/verify.ts';

describe('delegation revocation', () => {
  let server: TestServer;
  let api: AdminApi;
  const ids = { alice: '', bob: '', agentA: '', agentB: '', resource: '' };

  before(async () => {
    server = await startTestServer();
    api = await adminApi(server);
    ids.alice = String((await api.call('POST', '/users', { username: 'alice', password: 'correct horse battery' })).json.id);
    ids.bob = String((await api.call('POST', '/users', { username: 'bob', password: 'correct horse battery' })).json.id);
    ids.agentA = String((await api.call('POST', '/agents', { name: 'agent-a' })).json.client_id);
    ids.agentB = String((await api.call('POST', '/agents', { name: 'agent-b' })).json.client_id);
    ids.resource = String((await api.call('POST', '/resources', { name: 'docs', upstream_base_url: 'https://docs.example', actions: [{ name: 'read' }] })).json.id);
  });
  after(async () => server.stop());

  async function revokedAt(delegationId: string) {
    const delegation = await server.ctx.db.selectFrom('delegations').select('revoked_at').where('id', '=', delegationId).executeTakeFirstOrThrow();
    const tokens = await server.ctx.db.selectFrom('refresh_tokens').select('revoked_at').where('delegation_id', '=', delegationId).execute();
    return { delegation: delegation.revoked_at, tokens: tokens.map((token) => token.revoked_at) };
  }

  test('one delegation and its refresh tokens', async () => {
    const untouched = await storeDelegation(server.ctx, { userId: ids.alice, clientId: ids.agentB, resourceId: ids.resource, scope: 'read' });
    const target = await storeDelegation(server.ctx, { userId: ids.alice, clientId: ids.agentA, resourceId: ids.resource, scope: 'read', refreshTokens: 2 });

    const response = await api.call('POST', `/delegations/${target.id}/revoke`, { reason: 'laptop lost' });
    assert.equal(response.status, 200);
    assert.deepEqual(response.json, { revoked: 1 });

    const state = await revokedAt(target.id);
    assert.equal(typeof state.delegation, 'number');
    assert.deepEqual(
      state.tokens.map((value) => typeof value),
      ['number', 'number'],
    );
    assert.equal((await revokedAt(untouched.id)).delegation, null);

    const again = await api.call('POST', `/delegations/${target.id}/revoke`);
    assert.deepEqual(again.json, { revoked: 0 });

    const entries = await readAudit(server.ctx.db, { limit: 1000 });
    const event = entries.map((entry) => entry.event).find((item) => item.event === 'delegation.revoked');
    assert.equal(event?.actor, `client:${api.clientId}`);
    assert.equal(event?.agent, ids.agentA);
    assert.equal(event?.user, ids.alice);
    assert.deepEqual(event?.target?.delegations, [target.id]);
    assert.deepEqual(event?.reason, { reason: 'laptop lost' });
  });

  test('every delegation of one agent', async () => {
    await storeDelegation(server.ctx, { userId: ids.alice, clientId: ids.agentA, resourceId: ids.resource, scope: 'read' });
    await storeDelegation(server.ctx, { userId: ids.bob, clientId: ids.agentA, resourceId: ids.resource, scope: 'read' });
    const other = await storeDelegation(server.ctx, { userId: ids.bob, clientId: ids.agentB, resourceId: ids.resource, scope: 'read' });

    const response = await api.call('POST', `/agents/${ids.agentA}/revoke-delegations`, {});
    assert.deepEqual(response.json, { revoked: 2 });
    assert.equal((await revokedAt(other.id)).delegation, null);

    const active = await api.call('GET', `/delegations?agent=${ids.agentA}&active=true`);
    assert.deepEqual(active.json.items, []);
    const revoked = await api.call('GET', `/delegations?agent=${ids.agentA}&active=false`);
    assert.equal((revoked.json.items as unknown[]).length, 3);
  });

  test('every delegation of one person', async () => {
    await storeDelegation(server.ctx, { userId: ids.bob, clientId: ids.agentA, resourceId: ids.resource, scope: 'read', refreshTokens: 3 });
    const response = await api.call('POST', '/users/bob/revoke-delegations');
    assert.deepEqual(response.json, { revoked: 2 });

    const tokens = await server.ctx.db.selectFrom('refresh_tokens').select('revoked_at').where('user_id', '=', ids.bob).execute();
    assert.ok(tokens.length >= 4);
    assert.ok(tokens.every((token) => token.revoked_at !== null));

    const listed = await api.call('GET', '/delegations?user=bob&active=true');
    assert.deepEqual(listed.json.items, []);
  });

  test('listing shows names and filters', async () => {
    const listed = await api.call('GET', '/delegations?user=alice');
    const items = listed.json.items as Array<Record<string, unknown>>;
    assert.ok(items.length >= 3);
    assert.ok(items.every((item) => item.username === 'alice' && item.resource_display_name === 'docs'));
    assert.ok(items.some((item) => item.agent_name === 'agent-b' && item.revoked_at === null));
  });

  test('audit chain stays valid', async () => {
    const verified = await api.call('GET', '/audit/verify');
    assert.equal(verified.json.ok, true);
  });
});
