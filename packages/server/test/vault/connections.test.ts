import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { createUser } from '../../src/identity/users.ts';
import { newId, nowSeconds } from '../../src/store/ids.ts';
import { ConnectionError, deleteConnection, listConnections, readCredential, saveConnection } from '../../src/vault/connections.ts';

const CREDENTIAL = 'upstream-secret-7f3c9a1e5b2d4f60';

let server: TestServer;
let userId: string;
let otherUserId: string;
let resourceId: string;

async function insertResource(name: string, upstream: string | null): Promise<string> {
  const id = newId('res');
  await server.ctx.db
    .insertInto('resources')
    .values({ id, tenant_id: server.ctx.tenantId, name, identifier: `${server.issuer}/gateway/${name}`, display_name: name, access_token_ttl_seconds: 300, upstream_base_url: upstream, upstream_auth: upstream === null ? null : 'bearer', created_at: nowSeconds() })
    .execute();
  return id;
}

before(async () => {
  server = await startTestServer();
  userId = (await createUser(server.ctx, { username: 'vault-alice', password: 'correct horse battery' })).id;
  otherUserId = (await createUser(server.ctx, { username: 'vault-bob', password: 'correct horse battery' })).id;
  resourceId = await insertResource('vault-api', 'http://127.0.0.1:9/api');
});

after(async () => {
  await server.stop();
});

test('saveConnection stores only ciphertext', async () => {
  const saved = await saveConnection(server.ctx, { userId, resourceId, credential: CREDENTIAL });
  assert.equal(saved.user_id, userId);
  assert.equal(saved.resource_id, resourceId);
  assert.equal(Object.hasOwn(saved, 'ciphertext'), false);

  const row = await server.ctx.db.selectFrom('connections').selectAll().where('id', '=', saved.id).executeTakeFirstOrThrow();
  assert.equal(JSON.stringify(row).includes(CREDENTIAL), false);
  assert.equal(row.ciphertext.split('.').length, 5, 'the ciphertext is a compact JWE');

  assert.equal(await readCredential(server.ctx, { userId, resourceId }), CREDENTIAL);
});

test('saveConnection replaces the one row', async () => {
  const first = await saveConnection(server.ctx, { userId, resourceId, credential: 'first-credential' });
  const second = await saveConnection(server.ctx, { userId, resourceId, credential: 'second-credential' });
  assert.equal(second.id, first.id);

  const rows = await server.ctx.db.selectFrom('connections').select('id').where('user_id', '=', userId).where('resource_id', '=', resourceId).execute();
  assert.equal(rows.length, 1);
  assert.equal(await readCredential(server.ctx, { userId, resourceId }), 'second-credential');
});

test('listConnections never returns secrets', async () => {
  await saveConnection(server.ctx, { userId, resourceId, credential: CREDENTIAL });
  const all = await listConnections(server.ctx);
  const mine = await listConnections(server.ctx, { userId });
  const others = await listConnections(server.ctx, { userId: otherUserId });

  assert.ok(all.some((connection) => connection.user_id === userId));
  assert.equal(mine.length, 1);
  assert.equal(others.length, 0);
  assert.deepEqual(Object.keys(mine[0] ?? {}).sort(), ['created_at', 'id', 'resource_id', 'updated_at', 'user_id']);
  assert.equal(JSON.stringify(all).includes(CREDENTIAL), false);
});

test('saveConnection validates user and resource', async () => {
  const withoutUpstream = await insertResource('vault-no-upstream', null);
  const reasons = async (input: { userId: string; resourceId: string; credential: string }) => {
    const error = await saveConnection(server.ctx, input).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof ConnectionError, `expected a ConnectionError, got ${String(error)}`);
    return error.reason;
  };

  assert.equal(await reasons({ userId: 'usr_missing', resourceId, credential: 'x' }), 'user_not_found');
  assert.equal(await reasons({ userId, resourceId: 'res_missing', credential: 'x' }), 'resource_not_found');
  assert.equal(await reasons({ userId, resourceId: withoutUpstream, credential: 'x' }), 'resource_without_upstream');
  assert.equal(await reasons({ userId, resourceId, credential: '' }), 'empty_credential');
});

test('readCredential returns undefined without a row', async () => {
  assert.equal(await readCredential(server.ctx, { userId: otherUserId, resourceId }), undefined);
});

test('readCredential rejects a tampered ciphertext', async () => {
  const saved = await saveConnection(server.ctx, { userId, resourceId, credential: CREDENTIAL });
  const row = await server.ctx.db.selectFrom('connections').select('ciphertext').where('id', '=', saved.id).executeTakeFirstOrThrow();

  const parts = row.ciphertext.split('.');
  const body = Buffer.from(parts[3] ?? '', 'base64url');
  body[0] = (body[0] ?? 0) ^ 0x01;
  parts[3] = body.toString('base64url');
  await server.ctx.db.updateTable('connections').set({ ciphertext: parts.join('.') }).where('id', '=', saved.id).execute();

  await assert.rejects(readCredential(server.ctx, { userId, resourceId }));
});

test('readCredential rejects a ciphertext moved between rows', async () => {
  const secondResource = await insertResource('vault-api-2', 'http://127.0.0.1:9/other');
  const source = await saveConnection(server.ctx, { userId, resourceId, credential: CREDENTIAL });
  const target = await saveConnection(server.ctx, { userId: otherUserId, resourceId: secondResource, credential: 'bob-credential' });

  const sourceRow = await server.ctx.db.selectFrom('connections').select('ciphertext').where('id', '=', source.id).executeTakeFirstOrThrow();
  await server.ctx.db.updateTable('connections').set({ ciphertext: sourceRow.ciphertext }).where('id', '=', target.id).execute();

  await assert.rejects(readCredential(server.ctx, { userId: otherUserId, resourceId: secondResource }), /belongs to connection:/);
  assert.equal(await readCredential(server.ctx, { userId, resourceId }), CREDENTIAL);
});

test('deleteConnection removes the row', async () => {
  await saveConnection(server.ctx, { userId, resourceId, credential: CREDENTIAL });
  assert.equal(await deleteConnection(server.ctx, { userId, resourceId }), true);
  assert.equal(await readCredential(server.ctx, { userId, resourceId }), undefined);
  assert.equal(await deleteConnection(server.ctx, { userId, resourceId }), false);
});
