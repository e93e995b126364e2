import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { sha256Hex } from '../../src/store/ids.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { TOKEN_EXCHANGE, TYPE, clientConfig, consent, createExchangeWorld, exchange, personToken, postToken, refreshToken, type Agent, type ExchangeWorld } from './exchange-world.ts';

/**
 * A refresh token used as subject_token is rotated like one used at the refresh grant
 * (RFC 9700 §4.14.2). The exchange spends it and returns its successor. A spent token that
 * comes back, by either grant, revokes its family and delegation.
 */
describe('refresh token as subject_token (RFC 8693 §2.1, RFC 9700 §4.14.2)', () => {
  let server: TestServer;
  let world: ExchangeWorld;

  before(async () => {
    server = await startTestServer();
    world = await createExchangeWorld(server);
  });
  after(() => server.stop());

  const storedToken = (token: string) => server.ctx.db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', sha256Hex(token)).executeTakeFirstOrThrow();
  const storedDelegation = (id: string) => server.ctx.db.selectFrom('delegations').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const refresh = (agent: Agent, token: string) => postToken(server, agent, [['grant_type', 'refresh_token'], ['refresh_token', token]]);

  /** Records a new delegation of alice to the assistant and issues a refresh token under it, so that a revoked family touches no other test. */
  async function freshGrant(scope = 'notes.read notes.write'): Promise<{ delegationId: string; token: string }> {
    const delegationId = await consent(server, world, world.assistant, scope);
    return { delegationId, token: await refreshToken(server, world, world.assistant, delegationId, scope) };
  }

  test('exchange rotates the refresh token', async () => {
    const { delegationId, token } = await freshGrant();

    const config = await clientConfig(server, world.assistant);
    const response = await oidc.genericGrantRequest(config, TOKEN_EXCHANGE, { subject_token: token, subject_token_type: TYPE.refresh_token, scope: 'notes.read' });

    assert.equal(response.issued_token_type, TYPE.access_token);
    assert.equal(typeof response.refresh_token, 'string');
    assert.notEqual(response.refresh_token, token);
    const spent = await storedToken(token);
    const successor = await storedToken(String(response.refresh_token));
    assert.notEqual(spent.used_at, null);
    assert.equal(successor.used_at, null);
    assert.equal(successor.family_id, spent.family_id);
    assert.equal(successor.delegation_id, delegationId);
    // The exchange narrows the access token, not the grant: the successor keeps the grant's scope.
    assert.equal(successor.scope, 'notes.read notes.write');
  });

  test('successor works at the refresh grant', async () => {
    const { token } = await freshGrant();
    const exchanged = await exchange(server, world.assistant, token, [], TYPE.refresh_token);
    assert.equal(exchanged.status, 200);

    const refreshed = await refresh(world.assistant, String(exchanged.body.refresh_token));
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal(refreshed.body.scope, 'notes.read notes.write');
  });

  test('spent refresh token as subject_token revokes the family', async () => {
    const { delegationId, token } = await freshGrant();
    const first = await exchange(server, world.assistant, token, [], TYPE.refresh_token);
    assert.equal(first.status, 200);

    const reused = await exchange(server, world.assistant, token, [], TYPE.refresh_token);

    assert.equal(reused.status, 400);
    assert.equal(reused.body.error, 'invalid_request');
    assert.equal(reused.body.error_description, 'The subject_token was rejected. The refresh token was already used; every token of its grant is now revoked.');
    assert.notEqual((await storedToken(String(first.body.refresh_token))).revoked_at, null);
    assert.equal((await storedDelegation(delegationId)).revoked_reason, 'refresh_token_reused');
    const successor = await refresh(world.assistant, String(first.body.refresh_token));
    assert.equal(successor.status, 400);
    assert.equal(successor.body.error, 'invalid_grant');
  });

  test('token spent by refresh grant, then exchanged, is a reuse', async () => {
    const { delegationId, token } = await freshGrant();
    const rotated = await refresh(world.assistant, token);
    assert.equal(rotated.status, 200);

    const reused = await exchange(server, world.assistant, token, [], TYPE.refresh_token);

    assert.equal(reused.status, 400);
    assert.equal(reused.body.error, 'invalid_request');
    assert.match(String(reused.body.error_description), /already used/);
    assert.equal((await storedDelegation(delegationId)).revoked_reason, 'refresh_token_reused');
    assert.notEqual((await storedToken(String(rotated.body.refresh_token))).revoked_at, null);
  });

  test('token spent by exchange, then refreshed, is a reuse', async () => {
    const { delegationId, token } = await freshGrant();
    assert.equal((await exchange(server, world.assistant, token, [], TYPE.refresh_token)).status, 200);

    const reused = await refresh(world.assistant, token);

    assert.equal(reused.status, 400);
    assert.equal(reused.body.error, 'invalid_grant');
    assert.equal((await storedDelegation(delegationId)).revoked_reason, 'refresh_token_reused');
  });

  test('rejected exchange leaves the refresh token unspent', async () => {
    const { token } = await freshGrant('notes.read');

    const widened = await exchange(server, world.assistant, token, [['scope', 'notes.read notes.write']], TYPE.refresh_token);
    assert.equal(widened.status, 400);
    assert.equal(widened.body.error, 'invalid_scope');
    const elsewhere = await exchange(server, world.assistant, token, [['resource', world.calendar.identifier]], TYPE.refresh_token);
    assert.equal(elsewhere.status, 400);
    assert.equal(elsewhere.body.error, 'invalid_target');
    assert.equal((await storedToken(token)).used_at, null);

    const accepted = await exchange(server, world.assistant, token, [['scope', 'notes.read']], TYPE.refresh_token);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
  });

  test('concurrent exchanges: only one succeeds', async () => {
    const { delegationId, token } = await freshGrant();

    const results = await Promise.all([exchange(server, world.assistant, token, [], TYPE.refresh_token), exchange(server, world.assistant, token, [], TYPE.refresh_token)]);

    assert.deepEqual(results.map((result) => result.status).sort(), [200, 400]);
    assert.equal(results.find((result) => result.status === 400)?.body.error, 'invalid_request');
    // The loser is a reuse, whichever check caught it, so the grant is revoked for both.
    assert.equal((await storedDelegation(delegationId)).revoked_reason, 'refresh_token_reused');
  });

  test('actor_token refresh token is not spent', async () => {
    const { token } = await freshGrant();

    for (let attempt = 0; attempt < 2; attempt += 1) {
      const result = await exchange(server, world.assistant, await personToken(server, world), [['actor_token', token], ['actor_token_type', TYPE.refresh_token]]);
      assert.equal(result.status, 200, JSON.stringify(result.body));
      assert.equal(result.body.refresh_token, undefined);
    }
    assert.equal((await storedToken(token)).used_at, null);
  });

  test('spent refresh token as actor_token revokes the family', async () => {
    const { delegationId, token } = await freshGrant();
    assert.equal((await refresh(world.assistant, token)).status, 200);

    const result = await exchange(server, world.assistant, await personToken(server, world), [['actor_token', token], ['actor_token_type', TYPE.refresh_token]]);

    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.equal(result.body.error_description, 'The actor_token was rejected. The refresh token was already used; every token of its grant is now revoked.');
    assert.equal((await storedDelegation(delegationId)).revoked_reason, 'refresh_token_reused');
  });

  test('access token subject returns no refresh token', async () => {
    await freshGrant();
    const result = await exchange(server, world.assistant, await personToken(server, world));
    assert.equal(result.status, 200);
    assert.equal(result.body.refresh_token, undefined);
  });
});
