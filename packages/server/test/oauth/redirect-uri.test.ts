import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../harness.ts';
import { seedWorld } from '../fixtures.ts';
import { redirectUriMatches } from '../../src/oauth/redirect-uri.ts';

describe('redirect URI matching (RFC 9700 §4.1.3, RFC 8252 §7.3)', () => {
  const cases: Array<[name: string, registered: string, requested: string, matches: boolean]> = [
    ['identical URI', 'https://app.example.test/cb', 'https://app.example.test/cb', true],
    ['trailing slash differs', 'https://app.example.test/cb', 'https://app.example.test/cb/', false],
    ['extra query', 'https://app.example.test/cb', 'https://app.example.test/cb?x=1', false],
    ['https port differs', 'https://app.example.test/cb', 'https://app.example.test:8443/cb', false],
    ['loopback IPv4 any port', 'http://127.0.0.1/cb', 'http://127.0.0.1:51234/cb', true],
    ['loopback port to port', 'http://127.0.0.1:8000/cb', 'http://127.0.0.1:9000/cb', true],
    ['loopback IPv6 any port', 'http://[::1]/cb', 'http://[::1]:51234/cb', true],
    ['loopback path differs', 'http://127.0.0.1/cb', 'http://127.0.0.1:5000/other', false],
    ['loopback query differs', 'http://127.0.0.1/cb', 'http://127.0.0.1:5000/cb?next=x', false],
    ['localhost has no exception', 'http://localhost/cb', 'http://localhost:5000/cb', false],
    ['https loopback has no exception', 'https://127.0.0.1/cb', 'https://127.0.0.1:5000/cb', false],
    ['userinfo in loopback', 'http://127.0.0.1/cb', 'http://evil@127.0.0.1:5000/cb', false],
    ['other loopback address', 'http://127.0.0.1/cb', 'http://127.0.0.2:5000/cb', false],
  ];
  for (const [name, registered, requested, matches] of cases) {
    test(name, () => {
      assert.equal(redirectUriMatches(registered, requested), matches);
    });
  }
});

describe('authorize with a loopback redirect URI', () => {
  let server: TestServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;

  before(async () => {
    server = await startTestServer();
    world = await seedWorld(server.ctx, { redirectUri: 'http://127.0.0.1/callback' });
  });
  after(() => server.stop());

  function authorizeUrl(redirectUri: string): URL {
    const url = new URL(`${server.issuer}/authorize`);
    url.search = new URLSearchParams({ client_id: world.agent.client.client_id, redirect_uri: redirectUri, response_type: 'code', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', resource: world.resource.identifier }).toString();
    return url;
  }

  test('another port is accepted', async () => {
    const response = await fetch(authorizeUrl('http://127.0.0.1:49152/callback'), { redirect: 'manual' });
    assert.equal(response.status, 303);
    assert.match(response.headers.get('location') ?? '', /^\/login\?return_to=/);
  });

  test('another path is refused on the page', async () => {
    const response = await fetch(authorizeUrl('http://127.0.0.1:49152/elsewhere'), { redirect: 'manual' });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('location'), null);
  });
});
