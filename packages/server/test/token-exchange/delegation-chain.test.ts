import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { createClient } from '../../src/agents/clients.ts';
import { issueAccessToken } from '../../src/oauth/access-token.ts';
import { nowSeconds } from '../../src/store/ids.ts';
import { readAudit } from '../../src/audit/verify.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { createRole } from '../fixtures.ts';
import { callGateway, createWorld, delegatedToken, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { createProof, generateDpopKey } from '../dpop/proofs.ts';
import { TYPE, exchange, postToken, type Agent } from './exchange-world.ts';

/** Creates an agent whose roles allow only `read` on the world's resource. */
async function readOnlyAgent(server: TestServer, world: World, name: string): Promise<Agent> {
  const role = await createRole(server.ctx, `${name}-reader-${world.resourceName}`, [[world.identifier, 'read']]);
  const created = await createClient(server.ctx, { kind: 'agent', name });
  await server.ctx.db.insertInto('client_roles').values({ client_id: created.client.client_id, role_id: role }).execute();
  return { clientId: created.client.client_id, secret: created.clientSecret ?? '' };
}

async function auditEvents(server: TestServer, name: string): Promise<Record<string, unknown>[]> {
  const records = await readAudit(server.ctx.db, { limit: 10_000 });
  return records.map((record) => record.event as unknown as Record<string, unknown>).filter((event) => event.event === name);
}

async function ownToken(server: TestServer, world: World, agent: Agent): Promise<string> {
  const result = await postToken(server, agent, [['grant_type', 'client_credentials'], ['resource', world.identifier], ['scope', 'read']]);
  if (result.status !== 200) throw new Error(`client_credentials failed: ${result.status} ${JSON.stringify(result.body)}`);
  return String(result.body.access_token);
}

/**
 * Hands the holder's token on (RFC 8693 §2.1): the holder, the subject token's current actor,
 * exchanges it and names the sub-agent with the sub-agent's own token as actor_token.
 */
async function handOn(server: TestServer, world: World, holder: Agent, subAgent: Agent, subjectToken: string, extra: Array<[string, string]> = []) {
  return exchange(server, holder, subjectToken, [['actor_token', await ownToken(server, world, subAgent)], ['actor_token_type', TYPE.access_token], ['resource', world.identifier], ...extra]);
}

async function delegationCount(server: TestServer, agent: Agent): Promise<number> {
  const rows = await server.ctx.db.selectFrom('delegations').select('id').where('client_id', '=', agent.clientId).execute();
  return rows.length;
}

describe('delegation chains (RFC 8693 §4.1)', () => {
  let server: TestServer;
  let upstream: Upstream;
  let world: World;
  let parent: Agent;
  let sub: Agent;
  let subSub: Agent;
  let fourth: Agent;

  before(async () => {
    server = await startTestServer();
    upstream = await startUpstream();
    world = await createWorld(server, upstream.url);
    parent = { clientId: world.agentId, secret: world.agentSecret };
    sub = await readOnlyAgent(server, world, 'Sub agent');
    subSub = await readOnlyAgent(server, world, 'Sub-sub agent');
    fourth = await readOnlyAgent(server, world, 'Fourth agent');
  });
  after(async () => {
    await server.stop();
    await upstream.close();
  });

  test('sub-agent token nests the earlier actor', async () => {
    const parentToken = await delegatedToken(server, world, 'read write echo');
    const result = await handOn(server, world, parent, sub, parentToken);
    assert.equal(result.status, 200, JSON.stringify(result.body));

    const claims = decodeJwt(String(result.body.access_token));
    assert.equal(claims.sub, world.user.id);
    assert.equal(claims.client_id, sub.clientId);
    assert.deepEqual(claims.act, { sub: sub.clientId, act: { sub: parent.clientId } });
    // The sub-agent's roles allow only read, so the intersection drops write and echo.
    assert.equal(claims.scope, 'read');

    const delegation = await server.ctx.db.selectFrom('delegations').selectAll().where('id', '=', String(claims.delegation_id)).executeTakeFirstOrThrow();
    assert.equal(delegation.client_id, sub.clientId);
    assert.equal(delegation.user_id, world.user.id);
    assert.equal(delegation.source, 'token_exchange');
    assert.equal(delegation.scope, 'read');

    const created = (await auditEvents(server, 'delegation.created')).find((event) => (event.target as Record<string, unknown>).delegation_id === delegation.id);
    const reason = created?.reason as Record<string, unknown>;
    assert.equal(reason.parent_delegation_id, decodeJwt(parentToken).delegation_id);
    assert.equal(reason.authorized_by, 'holder');
    assert.equal(reason.requested_by, parent.clientId);
  });

  test('gateway accepts the sub-agent token', async () => {
    const result = await handOn(server, world, parent, sub, await delegatedToken(server, world, 'read write echo'));
    const token = String(result.body.access_token);

    const read = await callGateway(server, world, '/items/7', { token });
    assert.equal(read.status, 200);
    const calls = await auditEvents(server, 'gateway.call');
    assert.equal(calls.at(-1)?.agent, sub.clientId);
    assert.equal(calls.at(-1)?.user, world.user.id);

    const write = await callGateway(server, world, '/items', { token, method: 'POST', body: '{}' });
    assert.equal(write.status, 403);
  });

  test('sub-agent cannot exceed its own roles', async () => {
    const result = await handOn(server, world, parent, sub, await delegatedToken(server, world, 'read write echo'), [['scope', 'write']]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_scope');
  });

  test('sub-agent cannot widen the holder scope', async () => {
    const result = await handOn(server, world, parent, sub, await delegatedToken(server, world, 'echo'), [['scope', 'read']]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_scope');
  });

  test('chain of three actors accepted', async () => {
    const second = await handOn(server, world, parent, sub, await delegatedToken(server, world, 'read'));
    const third = await handOn(server, world, sub, subSub, String(second.body.access_token));
    assert.equal(third.status, 200, JSON.stringify(third.body));
    assert.deepEqual(decodeJwt(String(third.body.access_token)).act, { sub: subSub.clientId, act: { sub: sub.clientId, act: { sub: parent.clientId } } });
  });

  test('chain beyond the maximum depth rejected', async () => {
    const second = await handOn(server, world, parent, sub, await delegatedToken(server, world, 'read'));
    const third = await handOn(server, world, sub, subSub, String(second.body.access_token));
    const fourthResult = await handOn(server, world, subSub, fourth, String(third.body.access_token));
    assert.equal(fourthResult.status, 400);
    assert.equal(fourthResult.body.error, 'invalid_request');
    assert.match(String(fourthResult.body.error_description), /4 actors, but this server allows at most 3/);
  });

  test('chain looping back rejected', async () => {
    const second = await handOn(server, world, parent, sub, await delegatedToken(server, world, 'read'));
    const back = await handOn(server, world, sub, parent, String(second.body.access_token));
    assert.equal(back.status, 400);
    assert.equal(back.body.error, 'invalid_request');
    assert.match(String(back.body.error_description), /already appears in the subject_token's actor chain/);
  });

  test('holder narrows its own token', async () => {
    const parentToken = await delegatedToken(server, world, 'read write');
    const result = await exchange(server, parent, parentToken, [['scope', 'read']]);
    assert.equal(result.status, 200);
    const claims = decodeJwt(String(result.body.access_token));
    assert.deepEqual(claims.act, { sub: parent.clientId });
    assert.equal(claims.delegation_id, decodeJwt(parentToken).delegation_id);
    assert.equal(claims.scope, 'read');
  });

  test('revoked holder delegation rejected', async () => {
    const parentToken = await delegatedToken(server, world, 'read');
    await server.ctx.db.updateTable('delegations').set({ revoked_at: nowSeconds(), revoked_reason: 'test' }).where('id', '=', String(decodeJwt(parentToken).delegation_id)).execute();
    const result = await handOn(server, world, parent, sub, parentToken);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /revoked/);
  });

  test('revoked consent stops exchanged tokens', async () => {
    const token = await delegatedToken(server, world, 'read');
    assert.equal((await callGateway(server, world, '/items/1', { token })).status, 200);

    await server.ctx.db.updateTable('delegations').set({ revoked_at: nowSeconds(), revoked_reason: 'test' }).where('id', '=', String(decodeJwt(token).delegation_id)).execute();
    assert.equal((await callGateway(server, world, '/items/1', { token })).status, 401);
  });

  test('revoking the holder stops sub-agent tokens', async () => {
    const parentToken = await delegatedToken(server, world, 'read');
    const handed = await handOn(server, world, parent, sub, parentToken);
    const subToken = String(handed.body.access_token);
    assert.equal((await callGateway(server, world, '/items/2', { token: subToken })).status, 200);

    const { revokeDelegation } = await import('../../src/revocation/revoke.ts');
    await revokeDelegation(server.ctx, String(decodeJwt(parentToken).delegation_id), { by: 'test', reason: 'holder revoked' });

    const after = await callGateway(server, world, '/items/2', { token: subToken });
    assert.equal(after.status, 401);
    assert.equal(((await after.json()) as { error: string }).error, 'invalid_token');
  });

  test('agent cannot take another agent token', async () => {
    const parentToken = await delegatedToken(server, world, 'read');
    const before = { sub: await delegationCount(server, sub), subSub: await delegationCount(server, subSub) };

    // RFC 8693 §2.1, §4.4: the sub-agent alone, with or without its own actor_token, is not authorized by the holder.
    const alone = await exchange(server, sub, parentToken, [['resource', world.identifier]]);
    const withOwnActorToken = await exchange(server, sub, parentToken, [['actor_token', await ownToken(server, world, sub)], ['actor_token_type', TYPE.access_token], ['resource', world.identifier]]);
    for (const result of [alone, withOwnActorToken]) {
      assert.equal(result.status, 400, JSON.stringify(result.body));
      assert.equal(result.body.error, 'invalid_request');
      assert.equal(
        result.body.error_description,
        `The subject_token's current actor is ${parent.clientId}, so only ${parent.clientId} may hand it on to ${sub.clientId}, by naming ${sub.clientId} with its own access token as actor_token. Otherwise the subject_token's "may_act" claim must name ${sub.clientId}.`,
      );
    }

    // Naming a third agent does not help a caller that is not the current actor either.
    const forThird = await handOn(server, world, sub, subSub, parentToken);
    assert.equal(forThird.status, 400);
    assert.equal(forThird.body.error, 'invalid_request');
    assert.equal(forThird.body.error_description, `The actor_token names the agent ${subSub.clientId}, which hands the subject_token on. Only the subject_token's current actor (${parent.clientId}) may do that.`);

    assert.equal(await delegationCount(server, sub), before.sub);
    assert.equal(await delegationCount(server, subSub), before.subSub);
  });

  test('actor_token of a non-agent rejected', async () => {
    const parentToken = await delegatedToken(server, world, 'read');
    const appToken = await issueAccessToken(server.ctx, { subject: world.applicationId, clientId: world.applicationId, audience: world.identifier, scope: ['read'], lifetimeSeconds: 300 });
    const result = await exchange(server, parent, parentToken, [['actor_token', appToken.token], ['actor_token_type', TYPE.access_token], ['resource', world.identifier]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.equal(result.body.error_description, `The actor_token names ${world.applicationId}, which is not an active agent, so it cannot become the actor.`);
  });

  test('hand-off binds to the sub-agent key', async () => {
    const subKey = await generateDpopKey();
    const tokenUrl = `${server.issuer}/token`;
    const boundOwn = await postToken(server, sub, [['grant_type', 'client_credentials'], ['resource', world.identifier], ['scope', 'read']], { dpop: await createProof(subKey, { htm: 'POST', htu: tokenUrl }) });
    assert.equal(boundOwn.body.token_type, 'DPoP', JSON.stringify(boundOwn.body));

    // The holder signs no proof with the sub-agent's key; the issued token is bound to it all the same (RFC 9449 §6.1).
    const result = await exchange(server, parent, await delegatedToken(server, world, 'read'), [['actor_token', String(boundOwn.body.access_token)], ['actor_token_type', TYPE.access_token], ['resource', world.identifier]]);
    assert.equal(result.status, 200, JSON.stringify(result.body));
    assert.equal(result.body.token_type, 'DPoP');
    const token = String(result.body.access_token);
    assert.deepEqual(decodeJwt(token).cnf, { jkt: subKey.jkt });

    // The holder got the token in its response, but only the sub-agent can use it.
    const asBearer = await callGateway(server, world, '/items/3', { token });
    assert.equal(asBearer.status, 401);
    const itemsUrl = `${server.issuer}/gateway/${world.resourceName}/items/3`;
    const withProof = await fetch(itemsUrl, { headers: { authorization: `DPoP ${token}`, dpop: await createProof(subKey, { htm: 'GET', htu: itemsUrl, accessToken: token }) } });
    assert.equal(withProof.status, 200);
  });

  test('DPoP-only sub-agent needs a bound actor_token', async () => {
    const strict = await readOnlyAgent(server, world, 'DPoP-only sub-agent');
    const bearerOwn = await ownToken(server, world, strict);
    // require_dpop set after the agent obtained a bearer token (RFC 9449 §5).
    await server.ctx.db.updateTable('clients').set({ require_dpop: 1 }).where('client_id', '=', strict.clientId).execute();

    const result = await exchange(server, parent, await delegatedToken(server, world, 'read'), [['actor_token', bearerOwn], ['actor_token_type', TYPE.access_token], ['resource', world.identifier]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.equal(result.body.error_description, `The agent ${strict.clientId} requires DPoP, so its actor_token must be DPoP-bound.`);
    assert.equal(await delegationCount(server, strict), 0);
  });

  test('may_act lets the named agent take over', async () => {
    const parentToken = await delegatedToken(server, world, 'read');
    const delegationId = String(decodeJwt(parentToken).delegation_id);
    const issue = async (mayAct: string) => (await issueAccessToken(server.ctx, { subject: world.user.id, clientId: parent.clientId, actor: parent.clientId, audience: world.identifier, scope: ['read'], lifetimeSeconds: 300, delegationId, mayAct })).token;

    // RFC 8693 §4.4: may_act names the requesting agent, so it may exchange the token without the holder.
    const allowed = await exchange(server, sub, await issue(sub.clientId), [['resource', world.identifier]]);
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
    assert.deepEqual(decodeJwt(String(allowed.body.access_token)).act, { sub: sub.clientId, act: { sub: parent.clientId } });

    const otherAgent = await exchange(server, sub, await issue(subSub.clientId), [['resource', world.identifier]]);
    assert.equal(otherAgent.status, 400);
    assert.equal(otherAgent.body.error, 'invalid_request');
    assert.match(String(otherAgent.body.error_description), /"may_act" claim does not name/);

    // may_act binds the holder too: it may hand the token only to the agent may_act names.
    const holderToOther = await handOn(server, world, parent, sub, await issue(subSub.clientId));
    assert.equal(holderToOther.status, 400);
    assert.match(String(holderToOther.body.error_description), /"may_act" claim does not name/);
  });
});

describe('delegation chain depth setting', () => {
  let server: TestServer;
  let upstream: Upstream;
  let world: World;

  before(async () => {
    server = await startTestServer({ maxDelegationChainDepth: 1 });
    upstream = await startUpstream();
    world = await createWorld(server, upstream.url);
  });
  after(async () => {
    await server.stop();
    await upstream.close();
  });

  test('depth 1 forbids handing a token on', async () => {
    const parent = { clientId: world.agentId, secret: world.agentSecret };
    const sub = await readOnlyAgent(server, world, 'Sub agent');
    const result = await handOn(server, world, parent, sub, await delegatedToken(server, world, 'read'));
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /2 actors, but this server allows at most 1/);
  });
});
