import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { signInWithFetch, type Session } from '../ciba/ciba-world.ts';
import { callGateway, createWorld, delegatedToken, startUpstream, UPSTREAM_CREDENTIAL, type Upstream, type World } from '../gateway/world.ts';

// On SQLite, Kysely has one connection, and a transaction holds it until it commits. A
// transaction that waits for a query on `ctx.db` (directly, through a helper given `ctx`, or
// through a promise that another request started) therefore waits forever, and every later
// request waits behind it. These tests run the transactions of the approval, policy and
// credential paths over HTTP while other requests read the same rows and caches, and bound
// every wait, so such a deadlock fails the test instead of hanging it.
// NOTE: a direct use of `ctx.db` in these transactions fails on every SQLite run. A promise shared
// with another request, and pool exhaustion on PostgreSQL, fail only when requests overlap enough.

/** Maximum time for one group of concurrent requests. Each request alone takes milliseconds. */
const SETTLE_TIMEOUT_MS = 15_000;
/**
 * Concurrent requests per group: more than the 10 connections of the PostgreSQL pool (store/db.ts),
 * so that transactions waiting for a second pooled connection would exhaust the pool there too.
 */
const PARALLEL = 12;

let server: TestServer;
let upstream: Upstream;
let admin: AdminApi;

before(async () => {
  server = await startTestServer();
  upstream = await startUpstream();
  admin = await within('admin client setup', adminApi(server));
});

after(async () => {
  await upstream.close();
  // After a deadlock, a request stays open and Fastify would wait for it, so cut the
  // connections when the normal stop does not finish in time. A deadlocked PostgreSQL pool
  // never releases its clients and keeps the process alive, so the process then exits once
  // the results are out.
  const stopped = await settledWithin(server.stop(), SETTLE_TIMEOUT_MS);
  if (!stopped) {
    server.app.server.closeAllConnections();
    await settledWithin(server.ctx.store.close(), SETTLE_TIMEOUT_MS);
    setTimeout(() => process.exit(1), 1000).unref();
  }
});

/**
 * Waits for `work` and fails with `label` when it does not settle within SETTLE_TIMEOUT_MS.
 * A timeout here almost always means a request waits for the database connection that a
 * transaction holds.
 */
async function within<T>(label: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${label} timed out after ${SETTLE_TIMEOUT_MS} ms: a transaction probably waits for a query on ctx.db instead of its own trx`)), SETTLE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = work.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function createWorldWithToken(): Promise<{ world: World; token: string }> {
  const world = await createWorld(server, upstream.url);
  return { world, token: await delegatedToken(server, world) };
}

/** Reads an item through the gateway. Each read decides against the policy in force and decrypts the vaulted credential. */
async function readItem(world: World, token: string): Promise<number> {
  const response = await callGateway(server, world, '/items/1', { token });
  await response.body?.cancel();
  return response.status;
}

async function readItems(world: World, token: string, count: number): Promise<number[]> {
  return Promise.all(Array.from({ length: count }, () => readItem(world, token)));
}

function sendBody(index: number): string {
  return JSON.stringify({ subject: `Report ${index}`, to: 'bob@example.test' });
}

async function sendMail(world: World, token: string, index: number, approvalId?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (approvalId !== undefined) headers['mandate-approval'] = approvalId;
  return callGateway(server, world, '/send/mail', { method: 'POST', token, body: sendBody(index), headers });
}

/** Asks for an approval of send number `index` and returns its id from the 403 body. */
async function requestApproval(world: World, token: string, index: number): Promise<string> {
  const response = await sendMail(world, token, index);
  const body = (await response.json()) as { error?: string; approval_id?: string };
  assert.equal(response.status, 403, JSON.stringify(body));
  assert.equal(body.error, 'approval_required');
  assert.ok(body.approval_id !== undefined, 'the 403 names the approval');
  return body.approval_id;
}

/** Opens the approval page with the person's session and returns the page's CSRF token. */
async function approvalPageToken(session: Session, approvalId: string): Promise<string> {
  const page = await fetch(`${server.issuer}/approvals/${approvalId}`, { headers: { cookie: session.cookie } });
  assert.equal(page.status, 200);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1];
  assert.ok(csrf !== undefined, 'the approval page has a CSRF token');
  return csrf;
}

/** Posts Approve as the approval page's form does. */
async function approve(session: Session, approvalId: string, csrf: string): Promise<number> {
  const decided = await fetch(`${server.issuer}/approvals/${approvalId}/approve`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf }),
  });
  await decided.body?.cancel();
  return decided.status;
}

/** Polls the approval's status as the agent does. */
async function approvalStatus(token: string, approvalId: string): Promise<number> {
  const response = await fetch(`${server.issuer}/approvals/${approvalId}/status`, { headers: { authorization: `Bearer ${token}` } });
  await response.body?.cancel();
  return response.status;
}

test('approvals decided during gateway calls', async () => {
  const { world, token } = await within('setup', createWorldWithToken());
  const session = await within('sign-in', signInWithFetch(server, world.user.username));
  const indexes = Array.from({ length: PARALLEL }, (_, index) => index);

  // Each new approval is inserted and audited in one transaction, while reads decide and forward.
  const [approvalIds, readsWhileRequesting] = await within('approval requests with concurrent reads', Promise.all([Promise.all(indexes.map((index) => requestApproval(world, token, index))), readItems(world, token, PARALLEL)]));
  assert.equal(new Set(approvalIds).size, PARALLEL, 'each send has its own approval');
  assert.deepEqual(readsWhileRequesting, Array<number>(PARALLEL).fill(200));

  // Each decision updates the approval and audits it in one transaction, while the agent polls
  // and reads. The pages are read first, so that the decisions start together.
  const tokens = await within('approval pages', Promise.all(approvalIds.map((id) => approvalPageToken(session, id))));
  const [decisions, polls, readsWhileDeciding] = await within(
    'approval decisions with concurrent polls and reads',
    Promise.all([Promise.all(approvalIds.map((id, index) => approve(session, id, tokens[index] ?? ''))), Promise.all(approvalIds.map((id) => approvalStatus(token, id))), readItems(world, token, PARALLEL)]),
  );
  assert.deepEqual(decisions, Array<number>(PARALLEL).fill(303), 'every decision redirects back to its page');
  assert.deepEqual(polls, Array<number>(PARALLEL).fill(200));
  assert.deepEqual(readsWhileDeciding, Array<number>(PARALLEL).fill(200));

  const sent = await within(
    'approved sends with concurrent reads',
    Promise.all([
      Promise.all(
        indexes.map(async (index) => {
          const response = await sendMail(world, token, index, approvalIds[index]);
          await response.body?.cancel();
          return response.status;
        }),
      ),
      readItems(world, token, PARALLEL),
    ]),
  );
  assert.deepEqual(sent[0], Array<number>(PARALLEL).fill(200), 'every approved send passes');
  assert.deepEqual(sent[1], Array<number>(PARALLEL).fill(200));
});

test('policy saves during gateway decisions', async () => {
  const { world, token } = await within('setup', createWorldWithToken());
  const versionBefore = Number((await within('policy read', admin.call('GET', '/policy'))).json.version);

  // Saves run one after another, because concurrent saves may collide by design. Each inserts the
  // next version and audits it in one transaction. Meanwhile reads load each new version into the
  // compiled-policy cache.
  const saveAll = async (): Promise<number[]> => {
    const statuses: number[] = [];
    for (let index = 0; index < PARALLEL; index += 1) {
      const source = `@id("no-purge-${index}")\nforbid(principal, action == Action::"${world.resourceName}/purge", resource);\n`;
      statuses.push((await admin.call('PUT', '/policy', { source })).status);
    }
    return statuses;
  };
  const readRounds = async (): Promise<number[]> => {
    const statuses: number[] = [];
    for (let round = 0; round < PARALLEL; round += 1) statuses.push(...(await readItems(world, token, 3)));
    return statuses;
  };

  const [saves, reads] = await within('policy saves with concurrent gateway calls', Promise.all([saveAll(), readRounds()]));
  assert.deepEqual(saves, Array<number>(PARALLEL).fill(200));
  assert.deepEqual(reads, Array<number>(PARALLEL * 3).fill(200), 'the saved policies forbid only purge');

  const after = await within('policy read', admin.call('GET', '/policy'));
  assert.equal(after.json.version, versionBefore + PARALLEL);

  const purge = await within('purge call', callGateway(server, world, '/items/archive', { method: 'DELETE', token }));
  assert.equal(purge.status, 403, 'the policy in force is the saved one');
});

test('credential saves during gateway calls', async () => {
  const { world, token } = await within('setup', createWorldWithToken());
  const path = `/users/${world.user.id}/credentials/${world.resourceId}`;

  // Each save reads and replaces the connection in one transaction while reads decrypt it.
  const [saves, reads] = await within(
    'credential saves with concurrent gateway calls',
    Promise.all([Promise.all(Array.from({ length: PARALLEL }, async () => (await admin.call('PUT', path, { credential: UPSTREAM_CREDENTIAL })).status)), readItems(world, token, PARALLEL)]),
  );
  assert.deepEqual(saves, Array<number>(PARALLEL).fill(200), 'each save replaces the stored credential');
  assert.deepEqual(reads, Array<number>(PARALLEL).fill(200));
});
