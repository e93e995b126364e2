import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { createCliEnvironment, runCli, type CliEnvironment } from '../cli/cli-runner.ts';

/** Registering post_logout_redirect_uris (RP-Initiated Logout 1.0 §3.1) through the admin API and the CLI. */
describe('post_logout_redirect_uris registration', () => {
  let server: TestServer;
  let api: AdminApi;

  before(async () => {
    server = await startTestServer();
    api = await adminApi(server);
  });
  after(async () => server.stop());

  test('application registers and lists its URIs', async () => {
    const uris = ['https://portal.example.test/bye', 'http://127.0.0.1:8700/signed-out'];
    const created = await api.call('POST', '/applications', { name: 'portal', redirect_uris: ['https://portal.example.test/cb'], post_logout_redirect_uris: uris });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.deepEqual(created.json.post_logout_redirect_uris, uris);

    const listed = await api.call('GET', '/applications');
    const items = listed.json.items as Array<{ client_id: string; post_logout_redirect_uris: string[] }>;
    assert.deepEqual(items.find((item) => item.client_id === created.json.client_id)?.post_logout_redirect_uris, uris);

    // The logout endpoint honours the registered URI.
    const response = await fetch(`${server.issuer}/logout?${new URLSearchParams({ client_id: String(created.json.client_id), post_logout_redirect_uri: uris[0] ?? '' })}`, { redirect: 'manual' });
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('location'), uris[0]);
  });

  test('agent without URIs shows an empty list', async () => {
    const created = await api.call('POST', '/agents', { name: 'plain agent' });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.deepEqual(created.json.post_logout_redirect_uris, []);
  });

  test('URIs are validated like redirect_uris', async () => {
    const cases: Array<[uri: string, reason: RegExp]> = [
      ['/relative', /absolute URI/],
      ['https://portal.example.test/bye#fragment', /fragment/],
      ['http://portal.example.test/bye', /https unless the host is loopback/],
      ['javascript:alert(1)', /private-use scheme/],
    ];
    for (const [uri, reason] of cases) {
      for (const path of ['/applications', '/agents']) {
        const response = await api.call('POST', path, { name: `bad ${uri} ${path}`, redirect_uris: ['https://portal.example.test/cb'], post_logout_redirect_uris: [uri] });
        assert.equal(response.status, 400, `${path} ${uri}`);
        const params = response.json['invalid-params'] as Array<{ name: string; reason: string }>;
        const param = params.find((candidate) => candidate.name === 'post_logout_redirect_uris.0');
        assert.ok(param, `${path} ${uri}: invalid-params names the field (${JSON.stringify(params)})`);
        assert.match(param.reason, reason, `${path} ${uri}`);
      }
    }
  });

  test('OpenAPI document describes the field', async () => {
    const response = await fetch(`${server.url}/admin/v1/openapi.json`);
    const document = (await response.json()) as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, { type?: string; description?: string }> } }> } }>> };
    for (const path of ['/admin/v1/applications', '/admin/v1/agents']) {
      const property = document.paths[path]?.post?.requestBody?.content['application/json']?.schema.properties.post_logout_redirect_uris;
      assert.equal(property?.type, 'array', path);
      assert.match(property?.description ?? '', /RP-Initiated Logout/, path);
    }
  });
});

describe('CLI --post-logout-redirect-uri', () => {
  let cli: CliEnvironment;

  before(async () => {
    cli = await createCliEnvironment('mandate-cli-logout-');
  });
  after(() => cli.remove());

  const run = (args: string[]) => runCli(args, cli.env);

  test('apps and agents create take the flag repeatedly', async () => {
    const app = await run(['apps', 'create', '--name', 'portal', '--redirect-uri', 'https://portal.example.test/cb', '--post-logout-redirect-uri', 'https://portal.example.test/bye', '--post-logout-redirect-uri', 'https://portal.example.test/bye2', '--json']);
    assert.equal(app.code, 0, app.stderr);
    assert.deepEqual((JSON.parse(app.stdout) as { post_logout_redirect_uris: string[] }).post_logout_redirect_uris, ['https://portal.example.test/bye', 'https://portal.example.test/bye2']);

    const agent = await run(['agents', 'create', '--name', 'bot', '--post-logout-redirect-uri', 'com.example.bot:/signed-out', '--json']);
    assert.equal(agent.code, 0, agent.stderr);
    assert.deepEqual((JSON.parse(agent.stdout) as { post_logout_redirect_uris: string[] }).post_logout_redirect_uris, ['com.example.bot:/signed-out']);
  });

  test('invalid URI is one line and exit 1', async () => {
    const result = await run(['apps', 'create', '--name', 'bad', '--redirect-uri', 'https://bad.example.test/cb', '--post-logout-redirect-uri', 'http://bad.example.test/bye']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /post_logout_redirect_uris\.0: must use https unless the host is loopback/);
    assert.equal(result.stderr.trim().split('\n').length, 1);
  });
});
