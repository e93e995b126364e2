import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { EXPIRED_REQUEST_RETENTION_SECONDS } from '../../src/approvals/expired-requests.ts';
import { nowSeconds } from '../../src/store/ids.ts';
import { callGateway, createWorld, delegatedToken, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { assertOAuthError, cibaTokenRequest, personDecides, requestSend } from '../ciba/ciba-world.ts';

let server: TestServer;
let upstream: Upstream;
let world: World;
let token: string;

before(async () => {
  server = await startTestServer();
  upstream = await startUpstream();
  world = await createWorld(server, upstream.url);
  token = await delegatedToken(server, world);
});

after(async () => {
  await upstream.close();
  await server.stop();
});

/** Makes a call that needs approval, with a body of its own so that it gets a new approval, and returns the approval id. */
async function requestApproval(memo: string): Promise<string> {
  const response = await callGateway(server, world, '/send', { method: 'POST', token, body: JSON.stringify({ memo }), headers: { 'content-type': 'application/json' } });
  assert.equal(response.status, 403);
  return String(((await response.json()) as { approval_id: string }).approval_id);
}

/** Moves a row's expiry into the past, as if `secondsAgo` had passed since it expired. */
async function expire(table: 'approvals' | 'ciba_requests', id: string, secondsAgo: number): Promise<void> {
  await server.ctx.db.updateTable(table).set({ expires_at: nowSeconds() - secondsAgo }).where('id', '=', id).execute();
}

async function approvalStatus(id: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.issuer}/approvals/${id}/status`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function cibaRowIds(): Promise<string[]> {
  const rows = await server.ctx.db.selectFrom('ciba_requests').select('id').where('user_id', '=', world.user.id).execute();
  return rows.map((row) => row.id);
}

test('old approvals are deleted, recent kept', async () => {
  const old = await requestApproval('old');
  const recent = await requestApproval('recent');
  await expire('approvals', old, EXPIRED_REQUEST_RETENTION_SECONDS + 5);
  await expire('approvals', recent, 60);
  assert.equal((await approvalStatus(old)).body.status, 'expired', 'before the cleanup, the old approval reads as expired');

  const fresh = await requestApproval('fresh');

  const ids = (await server.ctx.db.selectFrom('approvals').select('id').execute()).map((row) => row.id);
  assert.equal(ids.includes(old), false, 'the approval past its retention is deleted');
  assert.equal(ids.includes(recent), true, 'the approval within its retention is kept');
  assert.equal(ids.includes(fresh), true);
  assert.equal((await approvalStatus(recent)).body.status, 'expired');
  assert.equal((await approvalStatus(old)).status, 404, 'a deleted approval is unknown, so it still grants nothing');
});

test('old CIBA requests are deleted, issued kept', async () => {
  const oldPending = await requestSend(server, world, { memo: 'old pending' }, { binding_message: 'Old pending' });
  const issued = await requestSend(server, world, { memo: 'issued' }, { binding_message: 'Issued one' });
  const recent = await requestSend(server, world, { memo: 'recent' }, { binding_message: 'Recent one' });
  const issuedId = await personDecides(server, world, 'Issued one', 'approve');
  assert.equal((await cibaTokenRequest(server, world, issued.auth_req_id)).status, 200, 'the approved request is redeemed');

  const rows = await server.ctx.db.selectFrom('ciba_requests').select(['id', 'binding_message']).where('user_id', '=', world.user.id).execute();
  const idOf = (message: string) => rows.find((row) => row.binding_message === message)?.id ?? '';
  await expire('ciba_requests', idOf('Old pending'), EXPIRED_REQUEST_RETENTION_SECONDS + 5);
  await expire('ciba_requests', issuedId, EXPIRED_REQUEST_RETENTION_SECONDS + 5);
  await expire('ciba_requests', idOf('Recent one'), 60);

  await requestSend(server, world, { memo: 'fresh' }, { binding_message: 'Fresh one' });

  const remaining = await cibaRowIds();
  assert.equal(remaining.includes(idOf('Old pending')), false, 'the pending request past its retention is deleted');
  assert.equal(remaining.includes(issuedId), true, 'an issued request stays for its advance approval');
  assert.equal(remaining.includes(idOf('Recent one')), true, 'the request within its retention is kept');
  assertOAuthError(await cibaTokenRequest(server, world, recent.auth_req_id), 400, 'expired_token');
  assertOAuthError(await cibaTokenRequest(server, world, oldPending.auth_req_id), 400, 'invalid_grant');
});
