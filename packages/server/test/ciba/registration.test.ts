import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { runCli, serverCliEnvironment } from '../cli/cli-runner.ts';

describe('CIBA discovery and agent registration (CIBA Core 1.0 §4)', () => {
  let server: TestServer;
  let admin: AdminApi;

  before(async () => {
    server = await startTestServer();
    admin = await adminApi(server);
  });
  after(async () => server.stop());

  test('metadata names the endpoint and modes', async () => {
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      const metadata = (await (await fetch(`${server.issuer}${path}`)).json()) as Record<string, unknown>;
      assert.equal(metadata.backchannel_authentication_endpoint, `${server.issuer}/bc-authorize`, path);
      assert.deepEqual(metadata.backchannel_token_delivery_modes_supported, ['poll', 'ping']);
      assert.equal(metadata.backchannel_user_code_parameter_supported, false);
      assert.equal(metadata.backchannel_authentication_request_signing_alg_values_supported, undefined, 'signed requests are not offered');
      // RFC 9396 §10
      assert.deepEqual(metadata.authorization_details_types_supported, ['mandate_action']);
      assert.ok((metadata.grant_types_supported as string[]).includes('urn:openid:params:grant-type:ciba'));
    }
  });

  test('agents default to poll mode', async () => {
    const created = await admin.call('POST', '/agents', { name: 'Poll agent' });
    assert.equal(created.status, 201);
    assert.equal(created.json.backchannel_token_delivery_mode, 'poll');
    assert.equal(created.json.backchannel_client_notification_endpoint, undefined);

    const application = await admin.call('POST', '/applications', { name: 'Portal', redirect_uris: ['https://portal.example.test/cb'] });
    assert.equal(application.json.backchannel_token_delivery_mode, undefined, 'applications have no delivery mode');
    const refused = await admin.call('POST', '/applications', { name: 'Portal 2', redirect_uris: ['https://portal.example.test/cb'], backchannel_token_delivery_mode: 'ping' });
    assert.equal(refused.status, 400, 'applications cannot register CIBA fields');
  });

  test('ping registration is validated', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['ping without endpoint', { backchannel_token_delivery_mode: 'ping' }, 'backchannel_client_notification_endpoint'],
      ['endpoint without ping', { backchannel_client_notification_endpoint: 'https://agent.example.test/notify' }, 'backchannel_client_notification_endpoint'],
      ['push mode', { backchannel_token_delivery_mode: 'push', backchannel_client_notification_endpoint: 'https://agent.example.test/notify' }, 'backchannel_token_delivery_mode'],
      ['http off loopback', { backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: 'http://agent.example.test/notify' }, 'backchannel_client_notification_endpoint'],
      ['credentials in URL', { backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: 'https://user:secret@agent.example.test/notify' }, 'backchannel_client_notification_endpoint'],
      ['fragment', { backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: 'https://agent.example.test/notify#x' }, 'backchannel_client_notification_endpoint'],
    ];
    for (const [name, fields, field] of cases) {
      const response = await admin.call('POST', '/agents', { name: `Agent ${name}`, ...fields });
      assert.equal(response.status, 400, name);
      const params = response.json['invalid-params'] as { name: string }[];
      assert.ok(params.some((param) => param.name === field), `${name}: ${JSON.stringify(params)}`);
    }

    const ok = await admin.call('POST', '/agents', { name: 'Ping agent', backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: 'https://agent.example.test/notify' });
    assert.equal(ok.status, 201);
    const row = await server.ctx.db.selectFrom('clients').selectAll().where('client_id', '=', String(ok.json.client_id)).executeTakeFirstOrThrow();
    assert.equal(row.backchannel_token_delivery_mode, 'ping');
    assert.equal(row.backchannel_client_notification_endpoint, 'https://agent.example.test/notify');
  });

  test('loopback http needs the test setting', async () => {
    const strict = await startTestServer({ allowLoopbackUpstreams: false });
    try {
      const strictAdmin = await adminApi(strict);
      const refused = await strictAdmin.call('POST', '/agents', { name: 'Loopback agent', backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: 'http://127.0.0.1:9/notify' });
      assert.equal(refused.status, 400);
      assert.match(String(refused.json.detail), /allowLoopbackUpstreams/);
    } finally {
      await strict.stop();
    }
    const allowed = await admin.call('POST', '/agents', { name: 'Loopback agent', backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: 'http://127.0.0.1:9/notify' });
    assert.equal(allowed.status, 201, 'the test server sets allowLoopbackUpstreams');
  });

  test('CLI registers ping mode', async () => {
    const env = serverCliEnvironment(server, { MANDATE_ALLOW_LOOPBACK_UPSTREAMS: 'true' });
    const run = (args: string[]) => runCli(args, env);

    const created = await run(['agents', 'create', '--name', 'CLI ping agent', '--backchannel-token-delivery-mode', 'ping', '--backchannel-client-notification-endpoint', 'http://127.0.0.1:9/notify', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const agent = JSON.parse(created.stdout) as Record<string, unknown>;
    assert.equal(agent.backchannel_token_delivery_mode, 'ping');
    assert.equal(agent.backchannel_client_notification_endpoint, 'http://127.0.0.1:9/notify');

    const missing = await run(['agents', 'create', '--name', 'CLI ping agent 2', '--backchannel-token-delivery-mode', 'ping']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /backchannel_client_notification_endpoint: is required when backchannel_token_delivery_mode is ping/);

    const app = await run(['apps', 'create', '--name', 'CLI portal', '--redirect-uri', 'https://portal.example.test/cb', '--backchannel-token-delivery-mode', 'ping']);
    assert.equal(app.code, 1, 'apps create has no CIBA options');
  });
});
