import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { SignJWT, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { sha256Hex } from '../../src/store/ids.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { createProof, generateDpopKey, type DpopKey } from '../dpop/proofs.ts';
import { TOKEN_EXCHANGE, TYPE, clientConfig, consent, createExchangeWorld, exchange, personToken, postToken, refreshToken, type Agent, type ExchangeWorld } from './exchange-world.ts';

const NO_PROOF = 'The subject_token is bound to a DPoP key. Send a DPoP proof signed with that key in the DPoP header.';
const OTHER_KEY = 'The subject_token is bound to a DPoP key other than the one that signed the DPoP proof. Sign the proof with the key the token is bound to.';
const REFRESH_NO_PROOF = 'The subject_token was rejected. The refresh token is bound to a DPoP key; send a DPoP proof signed with that key.';

/**
 * A subject or actor token bound to a DPoP key (RFC 9449 §6.1 `cnf.jkt`, or a bound refresh
 * token, §5) is exchanged only with a proof signed by that key. Any other request is
 * `invalid_request` (RFC 8693 §2.2.2).
 */
describe('token exchange of DPoP-bound tokens (RFC 9449 §4.3, RFC 8693 §2.2.2)', () => {
  let server: TestServer;
  let world: ExchangeWorld;
  let key: DpopKey;
  let otherKey: DpopKey;
  let consentId: string;

  before(async () => {
    server = await startTestServer();
    world = await createExchangeWorld(server);
    consentId = await consent(server, world, world.assistant, 'notes.read notes.write');
    key = await generateDpopKey();
    otherKey = await generateDpopKey('EdDSA');
  });
  after(() => server.stop());

  const proofBy = async (signer: DpopKey) => ({ dpop: await createProof(signer, { htm: 'POST', htu: `${server.issuer}/token` }) });
  const storedToken = (token: string) => server.ctx.db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', sha256Hex(token)).executeTakeFirstOrThrow();

  /** Obtains the agent's own client_credentials token, bound to `signer` by the proof sent with the request. */
  async function boundAgentToken(agent: Agent, signer: DpopKey): Promise<string> {
    const result = await postToken(server, agent, [['grant_type', 'client_credentials'], ['resource', world.notes.identifier], ['scope', 'notes.read']], await proofBy(signer));
    assert.equal(result.status, 200, JSON.stringify(result.body));
    return String(result.body.access_token);
  }

  test('bound subject without proof rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world, { dpopJkt: key.jkt }));
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.equal(result.body.error_description, NO_PROOF);
  });

  test('bound subject with another key rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world, { dpopJkt: key.jkt }), [], TYPE.access_token, await proofBy(otherKey));
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.equal(result.body.error_description, OTHER_KEY);
  });

  test('bound jwt subject without proof rejected', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world, { dpopJkt: key.jkt }), [], TYPE.jwt);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.equal(result.body.error_description, NO_PROOF);
  });

  test('bound subject with its key via openid-client', async () => {
    const keyPair = await generateKeyPair('ES256');
    const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey), 'sha256');
    const config = await clientConfig(server, world.assistant);

    const response = await oidc.genericGrantRequest(config, TOKEN_EXCHANGE, { subject_token: await personToken(server, world, { dpopJkt: jkt }), subject_token_type: TYPE.access_token, scope: 'notes.read' }, { DPoP: oidc.getDPoPHandle(config, keyPair) });

    assert.equal(response.token_type, 'dpop');
    assert.equal(response.issued_token_type, TYPE.access_token);
    const claims = decodeJwt(response.access_token);
    assert.deepEqual(claims.cnf, { jkt });
    assert.deepEqual(claims.act, { sub: world.assistant.clientId });
    assert.equal(claims.delegation_id, consentId);
  });

  test('bound delegated token re-exchanged with its key', async () => {
    const first = await exchange(server, world.assistant, await personToken(server, world), [['scope', 'notes.read notes.write']], TYPE.access_token, await proofBy(key));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const delegated = String(first.body.access_token);

    const withoutProof = await exchange(server, world.assistant, delegated, [['scope', 'notes.read']]);
    assert.equal(withoutProof.status, 400);
    assert.equal(withoutProof.body.error_description, NO_PROOF);

    const narrowed = await exchange(server, world.assistant, delegated, [['scope', 'notes.read']], TYPE.access_token, await proofBy(key));
    assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
    assert.equal(narrowed.body.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(String(narrowed.body.access_token)).cnf, { jkt: key.jkt });
  });

  test('unbound subject with proof gets a bound token', async () => {
    const result = await exchange(server, world.assistant, await personToken(server, world), [], TYPE.access_token, await proofBy(key));
    assert.equal(result.status, 200);
    assert.equal(result.body.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(String(result.body.access_token)).cnf, { jkt: key.jkt });
  });

  test('cnf without jkt rejected', async () => {
    const claims = { ...decodeJwt(await personToken(server, world)), cnf: { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' } };
    const signing = server.ctx.keys.accessToken;
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: signing.alg, typ: 'at+jwt', kid: signing.kid }).sign(signing.privateKey);
    assert.equal(decodeProtectedHeader(forged).kid, signing.kid);

    const result = await exchange(server, world.assistant, forged, [], TYPE.access_token, await proofBy(key));

    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /"cnf" claim without a DPoP key thumbprint/);
  });

  test('bound actor_token without proof rejected', async () => {
    const actor = await boundAgentToken(world.assistant, key);
    const result = await exchange(server, world.assistant, await personToken(server, world), [['actor_token', actor], ['actor_token_type', TYPE.access_token]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.equal(result.body.error_description, 'The actor_token is bound to a DPoP key. Send a DPoP proof signed with that key in the DPoP header.');
  });

  test('bound actor_token with another key rejected', async () => {
    const actor = await boundAgentToken(world.assistant, key);
    const result = await exchange(server, world.assistant, await personToken(server, world), [['actor_token', actor], ['actor_token_type', TYPE.access_token]], TYPE.access_token, await proofBy(otherKey));
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /^The actor_token is bound to a DPoP key other than/);
  });

  test('bound actor_token with its key accepted', async () => {
    const actor = await boundAgentToken(world.assistant, key);
    const result = await exchange(server, world.assistant, await personToken(server, world), [['actor_token', actor], ['actor_token_type', TYPE.access_token]], TYPE.access_token, await proofBy(key));
    assert.equal(result.status, 200, JSON.stringify(result.body));
  });

  test('bound refresh_token subject without proof rejected', async () => {
    const token = await refreshToken(server, world, world.assistant, consentId, 'notes.read', key.jkt);

    const result = await exchange(server, world.assistant, token, [], TYPE.refresh_token);

    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.equal(result.body.error_description, REFRESH_NO_PROOF);
    // RFC 9449 §5: a request without the key must not burn the token.
    assert.equal((await storedToken(token)).used_at, null);
  });

  test('bound refresh_token subject with another key rejected', async () => {
    const token = await refreshToken(server, world, world.assistant, consentId, 'notes.read', key.jkt);

    const result = await exchange(server, world.assistant, token, [], TYPE.refresh_token, await proofBy(otherKey));

    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.match(String(result.body.error_description), /^The subject_token was rejected. The refresh token is bound to a different DPoP key/);
    assert.equal((await storedToken(token)).used_at, null);
  });

  test('bound refresh_token subject with its key', async () => {
    const token = await refreshToken(server, world, world.assistant, consentId, 'notes.read', key.jkt);

    const result = await exchange(server, world.assistant, token, [], TYPE.refresh_token, await proofBy(key));

    assert.equal(result.status, 200, JSON.stringify(result.body));
    assert.equal(result.body.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(String(result.body.access_token)).cnf, { jkt: key.jkt });
    // The successor stays bound to the same key (RFC 9449 §5).
    assert.equal((await storedToken(String(result.body.refresh_token))).dpop_jkt, key.jkt);
    const refreshedWithoutProof = await postToken(server, world.assistant, [['grant_type', 'refresh_token'], ['refresh_token', String(result.body.refresh_token)]]);
    assert.equal(refreshedWithoutProof.status, 400);
    assert.equal(refreshedWithoutProof.body.error, 'invalid_grant');
  });

  test('spent bound refresh_token without proof revokes nothing', async () => {
    const delegationId = await consent(server, world, world.assistant, 'notes.read');
    const token = await refreshToken(server, world, world.assistant, delegationId, 'notes.read', key.jkt);
    const first = await exchange(server, world.assistant, token, [], TYPE.refresh_token, await proofBy(key));
    assert.equal(first.status, 200);

    const replay = await exchange(server, world.assistant, token, [], TYPE.refresh_token);

    // Without the key the replay cannot prove it is the holder, so it cannot revoke the grant either.
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error_description, REFRESH_NO_PROOF);
    const delegation = await server.ctx.db.selectFrom('delegations').select('revoked_at').where('id', '=', delegationId).executeTakeFirstOrThrow();
    assert.equal(delegation.revoked_at, null);
  });

  test('bound refresh_token actor_token without proof rejected', async () => {
    const token = await refreshToken(server, world, world.assistant, consentId, 'notes.read', key.jkt);
    const result = await exchange(server, world.assistant, await personToken(server, world), [['actor_token', token], ['actor_token_type', TYPE.refresh_token]]);
    assert.equal(result.status, 400);
    assert.equal(result.body.error, 'invalid_request');
    assert.equal(result.body.error_description, 'The actor_token was rejected. The refresh token is bound to a DPoP key; send a DPoP proof signed with that key.');
  });
});
