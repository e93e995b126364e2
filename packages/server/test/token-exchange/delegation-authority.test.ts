import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { nowSeconds } from '../../src/store/ids.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { TYPE, agentToken, consent, createExchangeWorld, exchange, personToken, type ExchangeWorld } from './exchange-world.ts';

describe('token exchange needs the person delegation (RFC 8693 §2.2.2, §4.4)', () => {
  let server: TestServer;
  let world: ExchangeWorld;

  before(async () => {
    server = await startTestServer();
    world = await createExchangeWorld(server);
    await consent(server, world, world.assistant, 'notes.read notes.write');
  });
  after(() => server.stop());

  test('no delegation to the agent rejected', async () => {
    const result = await exchange(server, world.stranger, await personToken(server, world), [['actor_token', await agentToken(server, world, world.stranger)], ['actor_token_type', TYPE.access_token]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /The person has not delegated to this agent/);
  });

  test('no exchange delegation record without consent', async () => {
    const rows = await server.ctx.db.selectFrom('delegations').select('id').where('client_id', '=', world.stranger.clientId).execute();
    assert.equal(rows.length, 0);
  });

  test('delegation for another resource rejected', async () => {
    await consent(server, world, world.third, 'calendar.read', world.calendar.id);
    const result = await exchange(server, world.third, await personToken(server, world));
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /has not delegated/);
  });

  test('revoked delegation rejected', async () => {
    const id = await consent(server, world, world.fourth, 'notes.read');
    const before = await exchange(server, world.fourth, await personToken(server, world));
    assert.equal(before.status, 200);

    await server.ctx.db.updateTable('delegations').set({ revoked_at: nowSeconds(), revoked_reason: 'test' }).where('id', '=', id).execute();
    const after = await exchange(server, world.fourth, await personToken(server, world));
    assert.equal(after.status, 400);
    assert.equal(after.body.error, 'invalid_request');
    assert.match(String(after.body.error_description), /has not delegated/);
  });

  test('scope beyond the subject token rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world, { scope: 'notes.read' }), [['scope', 'notes.read notes.write']]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_scope');
    assert.match(String(result.body.error_description), /exceeds the subject token's scope/);
  });

  test('scope beyond the delegation rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['scope', 'notes.read notes.delete']]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_scope');
    assert.match(String(result.body.error_description), /exceeds what the person delegated/);
  });

  test('scope narrows to the subject token', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world, { scope: 'notes.read' }));
    assert.equal(result.status, 200);
    assert.equal(result.body.scope, 'notes.read');
  });

  test('lifetime capped by the subject token', async () => {
    const subject = await personToken(server, world, { lifetimeSeconds: 90 });
    const result = await exchange(server, world.assistant, subject);
    assert.equal(result.status, 200);
    assert.ok(Number(result.body.expires_in) <= 90, `expires_in ${String(result.body.expires_in)} exceeds 90`);
    assert.ok(Number(result.body.expires_in) > 80);
    const issued = decodeJwt(String(result.body.access_token));
    assert.ok(Number(issued.exp) <= Number(decodeJwt(subject).exp));
  });

  test('may_act naming the agent accepted', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world, { mayAct: world.assistant.clientId }), [['actor_token', await agentToken(server, world, world.assistant)], ['actor_token_type', TYPE.access_token]]);
    assert.equal(result.status, 200);
    assert.deepEqual(decodeJwt(String(result.body.access_token)).act, { sub: world.assistant.clientId });
  });

  test('may_act naming another agent rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world, { mayAct: world.helper.clientId }), [['actor_token', await agentToken(server, world, world.assistant)], ['actor_token_type', TYPE.access_token]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /"may_act" claim does not name/);
  });

  test('may_act enforced without actor_token', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world, { mayAct: world.helper.clientId }));
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
  });

  test('actor_token of another agent rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['actor_token', await agentToken(server, world, world.helper)], ['actor_token_type', TYPE.access_token]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    // RFC 8693 §2.1: another agent's token names a sub-agent, but a person's own token has no holder to hand it on.
    assert.equal(result.body.error_description, `The actor_token names the agent ${world.helper.clientId}, but the subject_token has no actor that could hand it on. Send the calling agent's own access token as actor_token, or none.`);
  });

  test('subject of a disabled person rejected', async () => {
    const subject = await personToken(server, world);
    await server.ctx.db.updateTable('users').set({ status: 'disabled' }).where('id', '=', world.alice.id).execute();
    try {
      const result = await exchange(server, world.assistant, subject);
      assert.equal(result.status, 400);
      assert.equal(result.body.error, 'invalid_request');
    } finally {
      await server.ctx.db.updateTable('users').set({ status: 'active' }).where('id', '=', world.alice.id).execute();
    }
  });

  test('agent own token as subject rejected', async () => {
    const result = await exchange(server, world.assistant, await agentToken(server, world, world.assistant));
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /active person/);
  });
});
