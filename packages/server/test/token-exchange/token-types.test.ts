import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { startTestServer, type TestServer } from '../harness.ts';
import { TOKEN_EXCHANGE, TYPE, agentToken, clientConfig, consent, createExchangeWorld, exchange, idToken, personToken, refreshToken, type ExchangeWorld } from './exchange-world.ts';

describe('token exchange token types (RFC 8693 §2.1, §3)', () => {
  let server: TestServer;
  let world: ExchangeWorld;
  let consentId: string;

  before(async () => {
    server = await startTestServer();
    world = await createExchangeWorld(server);
    consentId = await consent(server, world, world.assistant, 'notes.read notes.write');
  });
  after(() => server.stop());

  test('access_token subject with actor_token', async () => {
    const config = await clientConfig(server, world.assistant);
    const response = await oidc.genericGrantRequest(config, TOKEN_EXCHANGE, {
      subject_token: await personToken(server, world),
      subject_token_type: TYPE.access_token,
      actor_token: await agentToken(server, world, world.assistant),
      actor_token_type: TYPE.access_token,
      resource: world.notes.identifier,
      scope: 'notes.read',
    });

    assert.equal(response.issued_token_type, TYPE.access_token);
    assert.equal(response.token_type, 'bearer');
    // RFC 8693 §2.2.1: scope may be left out when it is the requested one.
    assert.equal(response.scope, undefined);
    const claims = decodeJwt(response.access_token);
    assert.equal(claims.sub, world.alice.id);
    assert.deepEqual(claims.act, { sub: world.assistant.clientId });
    assert.equal(claims.aud, world.notes.identifier);
    assert.equal(claims.scope, 'notes.read');
    assert.equal(claims.client_id, world.assistant.clientId);
    assert.equal(claims.delegation_id, consentId);
  });

  test('scope returned when none was requested', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world));
    assert.equal(result.status, 200);
    // notes.delete is in the subject token but not in the consent, so it is dropped.
    assert.equal(result.body.scope, 'notes.read notes.write');
  });

  test('scope returned when it differs from the request', async () => {
    // The helper's roles allow only notes.read, but the request names more than that.
    await consent(server, world, world.helper, 'notes.read notes.write');
    const result = await exchange(server, world.helper, await personToken(server, world), [['scope', 'notes.read notes.write']]);
    assert.equal(result.status, 200);
    assert.equal(result.body.scope, 'notes.read');
  });

  test('jwt subject is treated as an access token', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['scope', 'notes.read']], TYPE.jwt);
    assert.equal(result.status, 200);
    assert.equal(result.body.issued_token_type, TYPE.access_token);
    assert.equal(decodeJwt(String(result.body.access_token)).sub, world.alice.id);
  });

  test('jwt actor_token is treated as an access token', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['actor_token', await agentToken(server, world, world.assistant)], ['actor_token_type', TYPE.jwt]]);
    assert.equal(result.status, 200);
  });

  test('refresh_token subject stands for its grant person', async () => {
    const token = await refreshToken(server, world, world.assistant, consentId, 'notes.read notes.write');
    const config = await clientConfig(server, world.assistant);
    const response = await oidc.genericGrantRequest(config, TOKEN_EXCHANGE, { subject_token: token, subject_token_type: TYPE.refresh_token, scope: 'notes.read' });

    const claims = decodeJwt(response.access_token);
    assert.equal(claims.sub, world.alice.id);
    assert.deepEqual(claims.act, { sub: world.assistant.clientId });
    assert.equal(claims.aud, world.notes.identifier);
    assert.equal(claims.delegation_id, consentId);
  });

  test('refresh_token of another client rejected', async () => {
    const helperConsent = await consent(server, world, world.helper, 'notes.read');
    const token = await refreshToken(server, world, world.helper, helperConsent, 'notes.read');
    const result = await exchange(server, world.assistant, token, [], TYPE.refresh_token);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.equal(result.body.error_description, 'The subject_token was rejected. The refresh token is invalid.');
  });

  test('refresh_token of a revoked grant rejected', async () => {
    const revokedConsent = await consent(server, world, world.assistant, 'notes.read');
    const token = await refreshToken(server, world, world.assistant, revokedConsent, 'notes.read');
    await server.ctx.db.updateTable('delegations').set({ revoked_at: Math.floor(Date.now() / 1000), revoked_reason: 'test' }).where('id', '=', revokedConsent).execute();
    const result = await exchange(server, world.assistant, token, [], TYPE.refresh_token);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /revoked/);
  });

  test('refresh_token as actor_token', async () => {
    const token = await refreshToken(server, world, world.assistant, consentId, 'notes.read');
    const result = await exchange(server, world.assistant, await personToken(server, world), [['actor_token', token], ['actor_token_type', TYPE.refresh_token]]);
    assert.equal(result.status, 200);
  });

  test('id_token subject issued to the caller', async () => {
    const result = await exchange(server, world.assistant, await idToken(server, world, world.assistant.clientId), [['resource', world.notes.identifier]], TYPE.id_token);
    assert.equal(result.status, 200);
    const claims = decodeJwt(String(result.body.access_token));
    assert.equal(claims.sub, world.alice.id);
    assert.deepEqual(claims.act, { sub: world.assistant.clientId });
    // An ID token carries no scope, so the consent bounds it.
    assert.equal(result.body.scope, 'notes.read notes.write');
    // ID tokens live 300 seconds, and the exchanged token ends with it.
    assert.ok(Number(result.body.expires_in) <= 300);
  });

  test('id_token issued to another client rejected', async () => {
    const result = await exchange(server, world.assistant, await idToken(server, world, world.portal.clientId), [['resource', world.notes.identifier]], TYPE.id_token);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /not a valid ID token issued to this client/);
  });

  test('id_token subject without resource', async () => {
    const result = await exchange(server, world.assistant, await idToken(server, world, world.assistant.clientId), [], TYPE.id_token);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_target');
  });

  test('access token sent as id_token rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['resource', world.notes.identifier]], TYPE.id_token);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
  });

  test('id_token sent as access_token rejected', async () => {
    const result = await exchange(server, world.assistant, await idToken(server, world, world.assistant.clientId), [['resource', world.notes.identifier]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
  });

  test('id_token as actor_token rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['actor_token', await idToken(server, world, world.assistant.clientId)], ['actor_token_type', TYPE.id_token]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /ID token names a person/);
  });

  test('unknown subject_token_type rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [], 'urn:ietf:params:oauth:token-type:saml2');
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /subject_token_type .* is not supported/);
  });

  test('requested_token_type access_token accepted', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['requested_token_type', TYPE.access_token]]);
    assert.equal(result.status, 200);
    assert.equal(result.body.issued_token_type, TYPE.access_token);
  });

  for (const type of [TYPE.refresh_token, TYPE.id_token, TYPE.jwt, 'urn:example:unknown']) {
    test(`requested_token_type ${type.split(':').at(-1) ?? type} rejected`, async () => {
      const result = await exchange(server, world.assistant, await personToken(server, world), [['requested_token_type', type]]);
      assert.equal(result.status, 400);
      assert.equal(result.body.error, 'invalid_request');
      assert.match(String(result.body.error_description), /issues only access tokens/);
    });
  }

  test('repeated identical resource and audience', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['resource', world.notes.identifier], ['resource', world.notes.identifier], ['audience', world.notes.identifier]]);
    assert.equal(result.status, 200);
    assert.equal(decodeJwt(String(result.body.access_token)).aud, world.notes.identifier);
  });

  test('audience alone names the target', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['audience', world.notes.identifier]]);
    assert.equal(result.status, 200);
  });

  test('two distinct resources rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['resource', world.notes.identifier], ['resource', world.calendar.identifier]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_target');
    assert.match(String(result.body.error_description), /2 different targets/);
  });

  test('resource and audience differing rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['resource', world.notes.identifier], ['audience', world.calendar.identifier]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_target');
  });

  test('another registered resource rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['resource', world.calendar.identifier]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_target');
    assert.match(String(result.body.error_description), /subject token's audience/);
  });

  test('unregistered resource rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [['audience', 'https://unknown.example.test/api']]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_target');
  });
});
