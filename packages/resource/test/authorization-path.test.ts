import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { startTestServer } from '../../server/test/harness.ts';
import type { TestServer } from '../../server/test/harness.ts';
import { seedWorld } from '../../server/test/fixtures.ts';
import { adminApi } from '../../server/test/admin/admin-client.ts';
import type { AdminApi } from '../../server/test/admin/admin-client.ts';
import { createDelegation } from '../../server/src/oauth/delegation.ts';
import { issueAccessToken } from '../../server/src/oauth/access-token.ts';
import { readAudit } from '../../server/src/audit/verify.ts';
import { pdpClientCredentials, requireAccessToken, requireAuthorization } from '../src/index.ts';
import type { AuthorizationDecision, PdpCredentials } from '../src/index.ts';

/*
 * requireAuthorization behind a real Express router mounted at /api, against a real Mandate.
 * The policy forbids paths under /items/secret, so each case shows which `context.path`
 * Mandate received. Express has no type declarations in this repository, so the test declares
 * the few members it uses.
 */

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => unknown;
interface ExpressRouter {
  use(...handlers: Array<string | Middleware | ExpressRouter>): void;
}
interface ExpressApplication extends ExpressRouter {
  listen(port: number, host: string, callback: () => void): Server;
}
interface ExpressModule {
  (): ExpressApplication;
  Router(): ExpressRouter;
}
const express = createRequire(import.meta.url)('express') as ExpressModule;

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const POLICY = '@id("no-secret-items") forbid(principal, action == Action::"mail/mail.read", resource) when { context has path && context.path like "/items/secret*" };';

function basic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

describe('requireAuthorization context.path', () => {
  let mandate: TestServer;
  let api: AdminApi;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let credentials: PdpCredentials;
  let server: Server;
  let origin: string;
  let resource: string;
  let token: string;
  const decisions: AuthorizationDecision[] = [];

  /** Sends a GET with the path exactly as given, because fetch resolves dot segments first. */
  function get(path: string): Promise<{ status: number; body: string }> {
    const url = new URL(origin);
    return new Promise((resolve, reject) => {
      const outgoing = httpRequest({ host: url.hostname, port: Number(url.port), path, headers: { authorization: `Bearer ${token}` } }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      outgoing.on('error', reject);
      outgoing.end();
    });
  }

  /** Returns the `target.path` of the AuthZEN evaluations that Mandate audited after `mark`. */
  async function auditedPaths(mark: number): Promise<unknown[]> {
    const records = await readAudit(mandate.ctx.db, { afterSeq: mark, limit: 1000 });
    return records.filter((record) => record.event.event === 'authzen.evaluation').map((record) => record.event.target?.path);
  }

  async function auditMark(): Promise<number> {
    const row = await mandate.ctx.db.selectFrom('audit_log').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  before(async () => {
    mandate = await startTestServer();
    api = await adminApi(mandate);

    const app = express();
    server = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    resource = `${origin}/mail`;
    world = await seedWorld(mandate.ctx, { identifier: resource });
    // This API serves mail.read under every path, so the action covers GET on the whole resource.
    await mandate.ctx.db.updateTable('resource_actions').set({ path_prefix: '/' }).where('resource_id', '=', world.resource.id).where('name', '=', 'mail.read').execute();
    credentials = pdpClientCredentials({ issuer: mandate.issuer, clientId: world.app.client.client_id, clientSecret: world.app.clientSecret ?? '' });

    // Express removes the mount path /api from req.url inside the router, but not from req.originalUrl.
    const router = express.Router();
    router.use(requireAccessToken({ issuer: mandate.issuer, audience: resource }) as Middleware);
    router.use(
      requireAuthorization({ issuer: mandate.issuer, audience: resource, credentials, action: 'mail.read', basePath: '/api', onDecision: (decision) => decisions.push(decision) }) as Middleware,
    );
    router.use(((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: req.url }));
    }) as Middleware);
    app.use('/api', router);

    const scope = ['mail.read'];
    await createDelegation(mandate.ctx, { userId: world.alice.id, clientId: world.agent.client.client_id, resourceId: world.resource.id, scope, source: 'consent' });
    const subject = await issueAccessToken(mandate.ctx, { subject: world.alice.id, clientId: world.app.client.client_id, audience: resource, scope, lifetimeSeconds: 600 });
    const exchanged = await fetch(`${mandate.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic(world.agent.client.client_id, world.agent.clientSecret ?? ''), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, subject_token: subject.token, subject_token_type: ACCESS_TOKEN_TYPE, resource, scope: 'mail.read' }),
    });
    const body = (await exchanged.json()) as { access_token?: string };
    assert.equal(exchanged.status, 200, JSON.stringify(body));
    token = body.access_token ?? '';

    const saved = await api.call('PUT', '/policy', { source: POLICY });
    assert.equal(saved.status, 200, JSON.stringify(saved.json));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await mandate.stop();
  });

  it('sends path without mount prefix', async () => {
    const mark = await auditMark();

    const allowed = await get('/api/items/public?view=full');
    assert.equal(allowed.status, 200, allowed.body);
    assert.deepEqual(JSON.parse(allowed.body), { url: '/items/public?view=full' });

    const secret = await get('/api/items/secret?view=full');
    assert.equal(secret.status, 403, secret.body);
    assert.equal((JSON.parse(secret.body) as Record<string, unknown>).error, 'access_denied');
    assert.deepEqual(decisions.at(-1)?.context.policies, ['no-secret-items']);

    assert.deepEqual(await auditedPaths(mark), ['/items/public?view=full', '/items/secret?view=full']);
  });

  it('base path alone is the root', async () => {
    const mark = await auditMark();
    const response = await get('/api');
    assert.equal(response.status, 200, response.body);
    assert.deepEqual(await auditedPaths(mark), ['/']);
  });

  it('Mandate decodes the path as its gateway', async () => {
    const mark = await auditMark();
    const encoded = await get('/api/items/%73ecret');
    assert.equal(encoded.status, 403, encoded.body);
    assert.equal(decisions.at(-1)?.deniedBy, 'policy');
    assert.deepEqual(await auditedPaths(mark), ['/items/secret']);
  });

  it('denies paths the gateway rejects', async () => {
    for (const path of ['/api/items/public/../secret', '/api/items/public/%2e%2e/secret', '/api/items//secret', '/api/items/public%2Fsecret']) {
      const response = await get(path);
      assert.equal(response.status, 403, `${path}: ${response.body}`);
      const decision = decisions.at(-1);
      assert.equal(decision?.deniedBy, 'decision_unavailable', path);
      assert.match(String(decision?.error?.message), /HTTP 400/, path);
    }
  });

  it('denies path outside base path', async () => {
    // Express matches mount paths without regard to case, so /API reaches the router too.
    const mark = await auditMark();
    const response = await get('/API/items/secret');
    assert.equal(response.status, 403, response.body);
    const body = JSON.parse(response.body) as Record<string, unknown>;
    assert.equal(body.error, 'access_denied');
    assert.equal(body.error_description, 'The request path is outside /api, the base path of this resource.');
    assert.equal(decisions.at(-1)?.deniedBy, 'path_outside_base');
    assert.deepEqual(await auditedPaths(mark), [], 'Mandate was not asked');
  });

  it('rejects an invalid basePath', () => {
    for (const basePath of ['api', '/api?x=1', '/api#top', '/a//b', '/api v1']) {
      assert.throws(() => requireAuthorization({ issuer: mandate.issuer, audience: resource, credentials, action: 'mail.read', basePath }), /basePath .* must be a URL path/, basePath);
    }
    assert.doesNotThrow(() => requireAuthorization({ issuer: mandate.issuer, audience: resource, credentials, action: 'mail.read', basePath: '/api/' }));
  });
});
