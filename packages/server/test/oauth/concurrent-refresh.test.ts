import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { launchBrowser, startCallbackServer, type CallbackServer } from '../browser.ts';
import { authorizationCodeTokens, postForm, type CodeFlow } from './code-flow.ts';

// Two replicas of one agent that refresh with the same refresh token at the same moment: the
// store lets exactly one win, and the other use is a reuse, which revokes the grant. The
// documented rule (docs/refresh-tokens.md) is that replicas share one refresher.
describe('concurrent refresh of one refresh token', () => {
  let server: TestServer;
  let browser: Browser;
  let callback: CallbackServer;
  let flow: CodeFlow;
  let world: Awaited<ReturnType<typeof seedWorld>>;

  before(async () => {
    server = await startTestServer();
    callback = await startCallbackServer();
    world = await seedWorld(server.ctx, { redirectUri: callback.url });
    browser = await launchBrowser();
    const config = await client.discovery(new URL(server.issuer), world.agent.client.client_id, {}, client.ClientSecretBasic(world.agent.clientSecret ?? ''), { execute: [client.allowInsecureRequests] });
    flow = { browser, callback, config, resource: world.resource.identifier };
  });
  after(async () => {
    await browser.close();
    await callback.close();
    await server.stop();
  });

  test('one replica wins and the grant is revoked', async () => {
    const tokens = await authorizationCodeTokens(flow, 'alice', 'mail.read');
    const credentials = { clientId: world.agent.client.client_id, secret: world.agent.clientSecret ?? '' };
    const refresh = () => postForm(`${server.issuer}/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token ?? '' }, credentials);

    const results = await Promise.all([refresh(), refresh()]);
    const statuses = results.map((result) => result.status).sort();
    assert.deepEqual(statuses, [200, 400]);

    const loser = results.find((result) => result.status === 400);
    assert.equal(loser?.json?.error, 'invalid_grant');

    const winner = results.find((result) => result.status === 200);
    const next = await postForm(`${server.issuer}/token`, { grant_type: 'refresh_token', refresh_token: String(winner?.json?.refresh_token) }, credentials);
    assert.equal(next.status, 400);
    assert.equal(next.json?.error, 'invalid_grant');

    const delegationId = String(decodeJwt(tokens.access_token).delegation_id);
    const delegation = await server.ctx.db.selectFrom('delegations').select(['revoked_reason']).where('id', '=', delegationId).executeTakeFirst();
    assert.equal(delegation?.revoked_reason, 'refresh_token_reused');
  });
});
