import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../../src/agents/clients.ts';
import { readAudit } from '../../src/audit/verify.ts';
import type { AuditEvent } from '../../src/audit/entry.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { createRole } from '../fixtures.ts';
import { PASSWORD, callGateway, createWorld, delegatedToken, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { launchBrowser, signIn } from '../browser.ts';
import { TYPE, exchange, postToken, type Agent } from '../token-exchange/exchange-world.ts';
import { callPdp, evaluationOf, pepToken } from '../authzen/authzen-world.ts';
import { compilePolicy } from '../../src/policy/cedar-compile.ts';
import { tenantCedarSchema } from '../../src/policy/policy-store.ts';
import { readRecordedDecisions, replayDecisions } from '../../src/policy/replay.ts';
import { setPolicy } from './policy-world.ts';

/**
 * A token handed on by token exchange (parent agent → sub-agent) is used at the gateway and
 * through AuthZEN. Every agent of the `act` chain must still be allowed the call: its roles are
 * intersected, a Cedar `forbid` on `principal in Agent::"<parent>"` stops its sub-agents too,
 * and disabling the parent ends the sub-agent's token.
 */
describe('delegation chain at the gateway', () => {
  let server: TestServer;
  let upstream: Upstream;
  let api: AdminApi;
  let world: World;
  let parent: Agent;
  let sub: Agent;
  let pep: { pepId: string; pepSecret: string };

  before(async () => {
    server = await startTestServer();
    upstream = await startUpstream();
    api = await adminApi(server);
  });
  after(async () => {
    await upstream.close();
    await server.stop();
  });

  beforeEach(async () => {
    await setPolicy(api, '');
    world = await createWorld(server, upstream.url);
    parent = { clientId: world.agentId, secret: world.agentSecret };
    const role = await createRole(server.ctx, `sub-${world.resourceName}`, [[world.identifier, '*']]);
    const created = await createClient(server.ctx, { kind: 'agent', name: `Sub agent ${world.resourceName}` });
    await server.ctx.db.insertInto('client_roles').values({ client_id: created.client.client_id, role_id: role }).execute();
    sub = { clientId: created.client.client_id, secret: created.clientSecret ?? '' };
    const application = await createClient(server.ctx, { kind: 'application', name: `PEP ${world.resourceName}`, redirectUris: ['http://127.0.0.1/pep'] });
    pep = { pepId: application.client.client_id, pepSecret: application.clientSecret ?? '' };
  });

  /** Returns the parent's delegated token, handed on to the sub-agent by the parent with the sub-agent's actor token. */
  async function subAgentToken(scope = 'read write echo'): Promise<string> {
    const parentToken = await delegatedToken(server, world, scope);
    const own = await postToken(server, sub, [['grant_type', 'client_credentials'], ['resource', world.identifier], ['scope', 'read']]);
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const handed = await exchange(server, parent, parentToken, [['actor_token', String(own.body.access_token)], ['actor_token_type', TYPE.access_token], ['resource', world.identifier]]);
    assert.equal(handed.status, 200, JSON.stringify(handed.body));
    return String(handed.body.access_token);
  }

  async function lastDenial(): Promise<AuditEvent> {
    const records = await readAudit(server.ctx.db, { limit: 10_000 });
    const denial = records.map((record) => record.event).filter((event) => event.event === 'gateway.denied').at(-1);
    assert.ok(denial, 'the denial is audited');
    return denial;
  }

  async function evaluate(token: string): Promise<Record<string, unknown>> {
    const response = await callPdp(server, '/access/v1/evaluation', evaluationOf(world, token, 'read'), { token: await pepToken(server, pep) });
    assert.equal(response.status, 200, JSON.stringify(response.json));
    return response.json;
  }

  test('sub-agent allowed through live chain', async () => {
    const token = await subAgentToken();
    const response = await callGateway(server, world, '/items', { token });
    assert.equal(response.status, 200, await response.text());

    const records = await readAudit(server.ctx.db, { limit: 10_000 });
    const call = records.map((record) => record.event).filter((event) => event.event === 'gateway.call').at(-1);
    const decision = call?.reason?.policy_decision as { inputs: Record<string, unknown>; delegating_agent_roles: Record<string, string[]> };
    assert.deepEqual(decision.inputs.delegating_agents, [parent.clientId]);
    assert.deepEqual(Object.keys(decision.delegating_agent_roles), [parent.clientId]);
    assert.equal((await evaluate(token)).decision, true);
  });

  test('replay applies a forbid on the parent', async () => {
    const token = await subAgentToken();
    assert.equal((await callGateway(server, world, '/items', { token })).status, 200);
    const records = await readAudit(server.ctx.db, { limit: 10_000 });
    const seq = records.filter((record) => record.event.event === 'gateway.call').at(-1)?.seq;
    assert.ok(seq !== undefined);

    const candidate = compilePolicy(`@id("not-through-parent")\nforbid(principal in Agent::"${parent.clientId}", action, resource);`, 0, await tenantCedarSchema(server.ctx));
    assert.ok(candidate.ok, JSON.stringify(candidate));
    const report = replayDecisions(await readRecordedDecisions(server.ctx, { sinceSeconds: 0, limit: 10_000 }), candidate.policySet);
    const change = report.allowToDeny.find((item) => item.seq === seq);
    assert.ok(change, 'the sub-agent call is listed as allow to deny');
    assert.deepEqual(change.candidate.policies, ['not-through-parent']);
  });

  test('approval page names the parent', async () => {
    const token = await subAgentToken('read send');
    const required = await callGateway(server, world, '/send', { method: 'POST', token, body: '{"to":"bob"}', headers: { 'content-type': 'application/json' } });
    assert.equal(required.status, 403);
    const { error, approval_id: approvalId } = (await required.json()) as { error: string; approval_id: string };
    assert.equal(error, 'approval_required');

    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(`${server.issuer}/approvals/${approvalId}`);
      await signIn(page, world.user.username, PASSWORD);
      assert.equal(await page.textContent('#agent'), `Sub agent ${world.resourceName}`);
      assert.equal(await page.textContent('#delegating-agents'), `Filing Agent ${world.resourceName.slice('files-'.length)}`);
    } finally {
      await browser.close();
    }
  });

  test('parent without role denies sub-agent', async () => {
    const token = await subAgentToken();
    await server.ctx.db.deleteFrom('client_roles').where('client_id', '=', parent.clientId).execute();

    const response = await callGateway(server, world, '/items', { token });
    assert.equal(response.status, 403);
    assert.equal(((await response.json()) as { error: string }).error, 'insufficient_scope');
    assert.equal((await lastDenial()).reason?.denied_by, 'delegating_agent_roles');

    const evaluation = await evaluate(token);
    assert.equal(evaluation.decision, false);
    assert.equal((evaluation.context as Record<string, unknown>).denied_by, 'delegating_agent_roles');
  });

  test('forbid on parent covers sub-agents', async () => {
    const token = await subAgentToken();

    await setPolicy(api, `@id("not-through-parent")\nforbid(principal in Agent::"${parent.clientId}", action, resource);`);
    const denied = await callGateway(server, world, '/items', { token });
    assert.equal(denied.status, 403);
    const denial = await lastDenial();
    assert.equal(denial.reason?.denied_by, 'policy');
    assert.deepEqual((denial.reason?.policy_decision as { policies: string[] }).policies, ['not-through-parent']);
    assert.equal((await evaluate(token)).decision, false);

    await setPolicy(api, `@id("parent-only")\nforbid(principal == Agent::"${parent.clientId}", action, resource);`);
    const allowed = await callGateway(server, world, '/items', { token });
    assert.equal(allowed.status, 200, 'an equality test names the parent agent itself, not its sub-agents');
  });

  test('forbid on sub-agent spares parent', async () => {
    const token = await subAgentToken();
    const parentToken = await delegatedToken(server, world, 'read');
    await setPolicy(api, `forbid(principal in Agent::"${sub.clientId}", action, resource);`);

    assert.equal((await callGateway(server, world, '/items', { token })).status, 403);
    assert.equal((await callGateway(server, world, '/items', { token: parentToken })).status, 200, 'the parent is not in the sub-agent');
  });

  test('disabled parent ends sub-agent token', async () => {
    const token = await subAgentToken();
    await server.ctx.db.updateTable('clients').set({ status: 'disabled' }).where('client_id', '=', parent.clientId).execute();

    const response = await callGateway(server, world, '/items', { token });
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { error: string }).error, 'invalid_token');
    assert.equal((await lastDenial()).reason?.check, 'delegating_agent_inactive');
    assert.equal((await evaluate(token)).decision, false);

    // RFC 7662: the sub-agent introspecting its own token learns that it is no longer active.
    const introspection = await fetch(`${server.issuer}/introspect`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${sub.clientId}:${sub.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    assert.equal(introspection.status, 200);
    assert.deepEqual(await introspection.json(), { active: false });
  });

  test('act chain mismatch is rejected', async () => {
    const token = await subAgentToken();
    // Detach the sub-agent's delegation from its parent: the token still names the parent in `act`.
    await server.ctx.db.updateTable('delegations').set({ parent_delegation_id: null }).where('client_id', '=', sub.clientId).execute();

    const response = await callGateway(server, world, '/items', { token });
    assert.equal(response.status, 401);
    assert.equal((await lastDenial()).reason?.check, 'actor_chain_mismatch');
  });
});
