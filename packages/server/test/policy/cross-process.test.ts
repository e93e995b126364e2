import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { callGateway, delegatedToken, startUpstream, type Upstream } from '../gateway/world.ts';
import { policySetInForce } from '../../src/policy/policy-store.ts';
import { createPolicyWorld, setPolicy, type PolicyWorld } from './policy-world.ts';

// Two Mandate servers on one database, as two processes of one deployment: `first` takes the
// admin changes, `second` serves the gateway calls and must see each change at its next decision.
let first: TestServer;
let second: TestServer;
let upstream: Upstream;
let api: AdminApi;
let world: PolicyWorld;
let token: string;

before(async () => {
  first = await startTestServer();
  second = await startTestServer({}, { shareDatabaseWith: first });
  upstream = await startUpstream();
  api = await adminApi(first);
  world = await createPolicyWorld(api, upstream.url);
  // The token comes from the server that verifies it, because the issuer names its port.
  token = await delegatedToken(second, world, 'pay mail.read');
});

after(async () => {
  await upstream.close();
  await second.stop();
  await first.stop();
});

test('second server caches the compiled policy by version', async () => {
  const version = await setPolicy(api, `forbid(principal, action == Action::"${world.resourceName}/pay", resource) when { context.arguments has amount && context.arguments.amount > 1000 };`);

  const loaded = await policySetInForce(second.ctx);
  assert.equal(loaded.version, version);
  assert.equal(await policySetInForce(second.ctx), loaded, 'the same version is not compiled again');

  await setPolicy(api, '');
  const reloaded = await policySetInForce(second.ctx);
  assert.equal(reloaded.version, version + 1);
  assert.notEqual(reloaded, loaded);
});

test('policy saved on one server applies on the other', async () => {
  await setPolicy(api, '');
  assert.equal((await callGateway(second, world, '/mail', { token })).status, 200);

  await setPolicy(api, `@id("no-mail-reads")\nforbid(principal, action == Action::"${world.resourceName}/mail.read", resource);`);
  const denied = await callGateway(second, world, '/mail', { token });
  assert.equal(denied.status, 403);
  assert.equal(((await denied.json()) as { error: string }).error, 'access_denied');

  await setPolicy(api, `@approval\nforbid(principal, action == Action::"${world.resourceName}/mail.read", resource);`);
  const approval = await callGateway(second, world, '/mail', { token });
  assert.equal(approval.status, 403);
  assert.equal(((await approval.json()) as { error: string }).error, 'approval_required');

  await setPolicy(api, '');
  assert.equal((await callGateway(second, world, '/mail', { token })).status, 200);
});

test('role change on one server applies on the other', async () => {
  await setPolicy(api, '');
  assert.equal((await callGateway(second, world, '/mail', { token })).status, 200);

  assert.equal((await api.call('DELETE', `/agents/${world.agentId}/roles/${world.agentRole}`)).status, 200);
  const denied = await callGateway(second, world, '/mail', { token });
  assert.equal(denied.status, 403);
  assert.equal(((await denied.json()) as { error: string }).error, 'insufficient_scope');

  assert.equal((await api.call('POST', `/agents/${world.agentId}/roles`, { role: world.agentRole })).status, 200);
  assert.equal((await callGateway(second, world, '/mail', { token })).status, 200);
});
