import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { bootstrapAdminClient } from '../../src/admin/bootstrap.ts';

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function postForm(url: string, body: Record<string, string>, authorization: string) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization }, body: new URLSearchParams(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('agent registered with require_dpop', () => {
  let server: TestServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let adminToken: string;

  before(async () => {
    server = await startTestServer();
    world = await seedWorld(server.ctx);
    const admin = await bootstrapAdminClient(server.ctx, {}, 'test');
    const issued = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: `${server.issuer}/admin` }, basic(admin.client_id, admin.client_secret));
    adminToken = String(issued.body.access_token);
  });
  after(() => server.stop());

  test('admin API records the setting', async () => {
    const response = await fetch(`${server.issuer}/admin/v1/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Bound agent', roles: ['mail-reader'], require_dpop: true }),
    });
    assert.equal(response.status, 201);
    const agent = (await response.json()) as { client_id: string; client_secret: string; require_dpop: boolean };
    assert.equal(agent.require_dpop, true);

    const withoutProof = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: world.resource.identifier }, basic(agent.client_id, agent.client_secret));
    assert.equal(withoutProof.status, 400);
    assert.equal(withoutProof.body.error, 'invalid_dpop_proof');
  });

  test('agents default to bearer tokens', async () => {
    const listed = (await (await fetch(`${server.issuer}/admin/v1/agents`, { headers: { authorization: `Bearer ${adminToken}` } })).json()) as { items: Array<{ client_id: string; require_dpop: boolean }> };
    const seeded = listed.items.find((item) => item.client_id === world.agent.client.client_id);
    assert.equal(seeded?.require_dpop, false);
  });
});
