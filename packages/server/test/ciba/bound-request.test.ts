import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi } from '../admin/admin-client.ts';
import { setPolicy } from '../policy/policy-world.ts';
import { callGateway, createWorld, rawGatewayRequest, startUpstream, type Upstream, type World } from '../gateway/world.ts';
import { assertOAuthError, backchannelRequest, cibaTokenRequest, personDecides } from './ciba-world.ts';

/*
 * A mandate_action detail with `method` and `path` binds the exact HTTP request. The gateway
 * refuses a call of the detail's action whose method, normalized path or query differ. The
 * /bc-authorize endpoint refuses a path that the gateway would not map to the detail's action.
 */

let server: TestServer;
let upstream: Upstream;

before(async () => {
  server = await startTestServer({ cibaPollIntervalSeconds: 1 });
  upstream = await startUpstream();
});

after(async () => {
  await upstream.close();
  await server.stop();
});

function detail(world: World, members: Record<string, unknown>): string {
  return JSON.stringify([{ type: 'mandate_action', resource: world.identifier, ...members }]);
}

/** Asks for the detail through CIBA, has the person approve it on the page, and returns the access token. */
async function approvedToken(world: World, members: Record<string, unknown>, bindingMessage: string): Promise<string> {
  const requested = await backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, binding_message: bindingMessage, authorization_details: detail(world, members) });
  assert.equal(requested.status, 200, JSON.stringify(requested.body));
  await personDecides(server, world, bindingMessage, 'approve');
  const issued = await cibaTokenRequest(server, world, String(requested.body.auth_req_id));
  assert.equal(issued.status, 200, JSON.stringify(issued.body));
  return String(issued.body.access_token);
}

async function errorOf(response: Response): Promise<{ error: unknown; description: string }> {
  const body = (await response.json()) as Record<string, unknown>;
  return { error: body.error, description: String(body.error_description) };
}

async function deniedChecks(world: World): Promise<unknown[]> {
  const rows = await server.ctx.db.selectFrom('audit_log').select('entry').orderBy('seq').execute();
  return rows
    .map((row) => JSON.parse(row.entry) as Record<string, unknown>)
    .filter((entry) => entry.event === 'gateway.denied' && entry.agent === world.agentId)
    .map((entry) => (entry.reason as Record<string, unknown>).detail);
}

/** A gateway call that the token's detail does not cover, and the description its rejection must have. */
interface RejectedCall {
  path: string;
  method: string;
  body?: string;
  description: RegExp;
}

/**
 * Sends each call with the token and checks that it is rejected as `access_denied` with its
 * description, that none reached the upstream, and that a `gateway.denied` entry names `check`.
 */
async function assertRejected(world: World, token: string, calls: RejectedCall[], check: string): Promise<void> {
  const before = upstream.received.length;
  for (const call of calls) {
    const label = `${call.method} ${call.path}`;
    const response = await callGateway(server, world, call.path, { method: call.method, token, ...(call.body === undefined ? {} : { body: call.body }) });
    assert.equal(response.status, 403, label);
    const { error, description } = await errorOf(response);
    assert.equal(error, 'access_denied', label);
    assert.match(description, call.description, label);
  }
  assert.equal(upstream.received.length, before, 'nothing reached the upstream');
  assert.ok((await deniedChecks(world)).includes(check), `the audit entry names ${check}`);
}

describe('bound path and query at the gateway', () => {
  // `purge` is DELETE /items/archive and needs the person's approval.
  const APPROVED = { action: 'purge', method: 'DELETE', path: '/items/archive/4?force=true' };
  let world: World;
  let token: string;

  before(async () => {
    world = await createWorld(server, upstream.url);
    token = await approvedToken(world, APPROVED, 'Purge A-4');
  });

  test('token carries method and path', async () => {
    const response = await fetch(`${server.issuer}/introspect`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${world.agentId}:${world.agentSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    assert.deepEqual(body.authorization_details, [{ type: 'mandate_action', resource: world.identifier, ...APPROVED }]);
  });

  test('bound path mismatch refused', async () => {
    const paths = ['/items/archive/5?force=true', '/items/archive/4/x?force=true', '/items/archive?force=true'];
    await assertRejected(world, token, paths.map((path) => ({ path, method: 'DELETE', description: /path differs from the path the person approved/ })), 'path_mismatch');
  });

  test('bound query mismatch refused', async () => {
    const paths = ['/items/archive/4', '/items/archive/4?force=false', '/items/archive/4?force=true&all=1', '/items/archive/4?force=%74rue', '/items/archive/4?FORCE=true'];
    await assertRejected(world, token, paths.map((path) => ({ path, method: 'DELETE', description: /query differs from the query the person approved/ })), 'query_mismatch');
  });

  test('exact match allowed once', async () => {
    const before = upstream.received.length;
    // `%61` is `a`: the gateway normalizes the path before it compares, as it does before it forwards.
    const call = await rawGatewayRequest(server, `/gateway/${world.resourceName}/items/%61rchive/4?force=true`, token, 'DELETE');
    assert.equal(call.status, 200, call.body);
    assert.equal(upstream.received.length, before + 1);
    assert.equal(upstream.received.at(-1)?.method, 'DELETE');
    assert.equal(upstream.received.at(-1)?.url, '/api/items/archive/4?force=true');

    const again = await callGateway(server, world, '/items/archive/4?force=true', { method: 'DELETE', token });
    assert.equal(again.status, 403);
    assert.equal((await errorOf(again)).error, 'approval_required', 'the advance approval counts for one call');
    assert.equal(upstream.received.length, before + 1);
  });
});

describe('bound method at the gateway', () => {
  // `echo` covers every method under /echo and needs no approval.
  let world: World;
  let token: string;

  before(async () => {
    world = await createWorld(server, upstream.url);
    token = await approvedToken(world, { action: 'echo', method: 'PUT', path: '/echo/doc?v=1' }, 'Echo E-1');
  });

  test('bound method mismatch refused', async () => {
    const calls: RejectedCall[] = [];
    for (const method of ['POST', 'GET', 'DELETE']) {
      const description = new RegExp(`method ${method} differs from PUT`);
      calls.push(method === 'GET' ? { path: '/echo/doc?v=1', method, description } : { path: '/echo/doc?v=1', method, body: '{}', description });
    }
    await assertRejected(world, token, calls, 'method_mismatch');
  });

  test('bound method and path pass', async () => {
    const response = await callGateway(server, world, '/echo/doc?v=1', { method: 'PUT', token, body: '{}' });
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(upstream.received.at(-1)?.method, 'PUT');
    assert.equal(upstream.received.at(-1)?.url, '/api/echo/doc?v=1');
  });
});

describe('/bc-authorize checks method and path', () => {
  let world: World;

  before(async () => {
    world = await createWorld(server, upstream.url);
    // GET /items/archive belongs to this action, so the gateway maps GET /items/archive/1 to it and not to `read`.
    await server.ctx.db.insertInto('resource_actions').values({ resource_id: world.resourceId, name: 'archive-read', method: 'GET', path_prefix: '/items/archive', requires_approval: 0, description: 'Read archived items' }).execute();
  });

  async function ask(members: Record<string, unknown>) {
    return backchannelRequest(server, world, { scope: 'openid', login_hint: world.user.username, authorization_details: detail(world, members) });
  }

  test('path outside the action refused', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ action: 'purge', path: '/send/x' }, /outside the action purge, which covers DELETE \/items\/archive/],
      [{ action: 'purge', method: 'DELETE', path: '/items/archived/1' }, /outside the action purge/],
      [{ action: 'purge', path: '/items' }, /outside the action purge/],
      [{ action: 'read', path: '/items/archive/1' }, /maps GET \/items\/archive\/1 to the action archive-read, not to read/],
    ];
    for (const [members, description] of cases) {
      const response = await ask(members);
      assertOAuthError(response, 400, 'invalid_authorization_details', JSON.stringify(members));
      assert.match(String(response.body.error_description), description, JSON.stringify(members));
    }
  });

  test('method of another action refused', async () => {
    const response = await ask({ action: 'purge', method: 'POST', path: '/items/archive/1' });
    assertOAuthError(response, 400, 'invalid_authorization_details');
    assert.match(String(response.body.error_description), /method POST is not the method of the action purge/);
  });

  test('malformed method and path refused', async () => {
    const cases: Record<string, unknown>[] = [
      { action: 'echo', method: 'put' },
      { action: 'echo', method: '*' },
      { action: 'echo', method: 7 },
      { action: 'echo', method: '' },
      { action: 'echo', path: 'echo/x' },
      { action: 'echo', path: '' },
      { action: 'echo', path: '/echo/../items' },
      { action: 'echo', path: '/echo/%2e%2e/items' },
      { action: 'echo', path: '/echo//x' },
      { action: 'echo', path: '/echo/a%2Fb' },
      { action: 'echo', path: '/echo/a b' },
      { action: 'echo', path: '/echo/é' },
      { action: 'echo', path: '/echo/x#top' },
      { action: 'echo', path: '/echo/x?q=%zz' },
      { action: 'echo', path: '/echo/x\u0000' },
      { action: 'echo', path: `/echo/${'x'.repeat(4100)}` },
      { action: 'echo', path: ['/echo'] },
    ];
    for (const members of cases) {
      const response = await ask(members);
      assertOAuthError(response, 400, 'invalid_authorization_details', JSON.stringify(members).slice(0, 100));
    }
  });

  test('policy decides the bound path', async () => {
    const api = await adminApi(server);
    await setPolicy(api, `forbid(principal, action == Action::"${world.resourceName}/purge", resource) when { context has path && context.path like "/items/archive/keep*" };`);
    try {
      const forbidden = await ask({ action: 'purge', method: 'DELETE', path: '/items/archive/keep/1' });
      assertOAuthError(forbidden, 403, 'access_denied');
      assert.match(String(forbidden.body.error_description), /policy forbids purge/);

      const allowed = await ask({ action: 'purge', method: 'DELETE', path: '/items/archive/1' });
      assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
    } finally {
      await setPolicy(api, '');
    }
  });

  test('path under the action accepted', async () => {
    for (const members of [{ action: 'purge', path: '/items/archive' }, { action: 'purge', method: 'DELETE', path: '/items/archive/4?force=true&x=%20y' }, { action: 'echo', path: '/echo' }, { action: 'echo', method: 'PATCH' }]) {
      const response = await ask(members);
      assert.equal(response.status, 200, `${JSON.stringify(members)}: ${JSON.stringify(response.body)}`);
    }
  });
});
