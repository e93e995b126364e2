import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { readAudit } from '../../src/audit/verify.ts';
import { startGatewayFixture, type GatewayFixture } from './gateway-fixture.ts';
import { UPSTREAM_CREDENTIAL } from './world.ts';

let gateway: GatewayFixture;

before(async () => {
  gateway = await startGatewayFixture();
});

after(() => gateway.stop());

/**
 * Sends a gateway request with exactly these header lines (node:http, because fetch refuses
 * fields such as Connection, Keep-Alive and Proxy-Authorization). Given as an array, the lines
 * are sent as they are, so Host must be one of them.
 */
async function send(path: string, headers: Array<[string, string]>, init: { method?: string; body?: string } = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(gateway.server.issuer);
  const lines = [['host', url.host], ['authorization', `Bearer ${gateway.token}`], ...headers].flat();
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: url.hostname, port: Number(url.port), path: `/gateway/${gateway.world.resourceName}${path}`, method: init.method ?? 'GET', headers: lines }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown> }));
    });
    outgoing.on('error', reject);
    outgoing.end(init.body);
  });
}

/** Fields the gateway must not pass on, each with a value an attacker might send. */
const STRIPPED: Array<[string, string]> = [
  ['Cookie', 'mandate_session=stolen'],
  ['Cookie2', '$Version="1"'],
  ['Proxy-Authorization', 'Basic cHJveHk6c2VjcmV0'],
  ['DPoP', 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln'],
  ['Mandate-Approval', 'apr_forgedApprovalId'],
  ['Forwarded', 'for=10.0.0.1;proto=https;host=admin.internal'],
  ['Via', '1.1 trusted-proxy'],
  ['X-Forwarded', 'for=10.0.0.1'],
  ['X-Forwarded-For', '10.0.0.1'],
  ['X-Forwarded-Host', 'admin.internal'],
  ['X-Forwarded-Proto', 'https'],
  ['X-Forwarded-User', 'admin'],
  ['X-Forwarded-Client-Cert', 'Hash=abc;Subject="CN=admin"'],
  ['X-Real-IP', '10.0.0.2'],
  ['X-Client-IP', '10.0.0.3'],
  ['X-Cluster-Client-IP', '10.0.0.4'],
  ['X-Originating-IP', '10.0.0.5'],
  ['X-Remote-IP', '10.0.0.6'],
  ['X-Remote-Addr', '10.0.0.7'],
  ['Client-IP', '10.0.0.8'],
  ['True-Client-IP', '10.0.0.9'],
  ['CF-Connecting-IP', '10.0.0.10'],
  ['Fastly-Client-IP', '10.0.0.11'],
  ['Client-Cert', ':MIIB:'],
  ['Client-Cert-Chain', ':MIIC:'],
  ['SSL-Client-Cert', 'MIIB'],
  ['X-SSL-Client-Cert', 'MIIB'],
  ['X-Client-Cert', 'MIIB'],
  ['Remote-User', 'admin'],
  ['Remote-Groups', 'admins'],
  ['X-Remote-User', 'admin'],
  ['X-Authenticated-User', 'admin'],
  ['X-Authenticated-Userid', 'admin'],
  ['X-Auth-Request-User', 'admin'],
  ['X-Auth-Request-Email', 'admin@example.test'],
  ['X-Amzn-Oidc-Identity', 'admin'],
  ['CF-Access-Authenticated-User-Email', 'admin@example.test'],
  ['CF-Access-Jwt-Assertion', 'eyJ.e30.sig'],
  ['X-Goog-Authenticated-User-Email', 'accounts.google.com:admin@example.test'],
  ['X-Goog-IAP-JWT-Assertion', 'eyJ.e30.sig'],
  ['X-MS-Client-Principal-Name', 'admin'],
  ['X-MS-Token-AAD-Access-Token', 'eyJ.e30.sig'],
  ['Keep-Alive', 'timeout=5'],
  ['TE', 'trailers'],
  ['HTTP2-Settings', 'AAMAAABkAAQAAP__'],
  ['Connection', 'keep-alive, X-Hop-Custom'],
  ['X-Hop-Custom', 'listed in Connection'],
];

test('gateway strips identity and proxy fields', async () => {
  const before = gateway.upstream.received.length;
  const response = await send('/items/1', [...STRIPPED, ['X-Trace', 'keep-me'], ['Accept-Language', 'de']]);
  assert.equal(response.status, 200, JSON.stringify(response.json));
  assert.equal(gateway.upstream.received.length, before + 1);

  const received = gateway.upstream.received.at(-1);
  assert.ok(received);
  for (const [name] of STRIPPED) {
    if (name === 'Connection') continue;
    assert.equal(received.headers[name.toLowerCase()], undefined, `${name} reached the upstream`);
  }
  assert.notEqual(received.headers.connection, 'keep-alive, X-Hop-Custom', 'the caller Connection field is not relayed');
  assert.equal(received.headers.authorization, `Bearer ${UPSTREAM_CREDENTIAL}`, 'only the injected credential is sent');
  assert.equal(received.headers['x-trace'], 'keep-me', 'end-to-end fields pass');
  assert.equal(received.headers['accept-language'], 'de');
});

async function overrideDenials(): Promise<Record<string, unknown>[]> {
  const records = await readAudit(gateway.server.ctx.db, { limit: 5000 });
  return records
    .map((record) => record.event as unknown as Record<string, unknown>)
    .filter((event) => event.event === 'gateway.denied' && (event.reason as Record<string, unknown>).check === 'override');
}

test('gateway rejects override fields', async () => {
  const fields: Array<[string, string]> = [
    ['X-HTTP-Method-Override', 'DELETE'],
    ['X-HTTP-Method', 'DELETE'],
    ['X-Method-Override', 'DELETE'],
    ['X-Original-URL', '/items/archive'],
    ['X-Rewrite-URL', '/items/archive'],
  ];

  const before = gateway.upstream.received.length;
  const deniedBefore = (await overrideDenials()).length;
  for (const field of fields) {
    const response = await send('/items/1', [field]);
    assert.equal(response.status, 400, `status with ${field[0]}`);
    assert.equal(response.json.error, 'invalid_request', `error with ${field[0]}`);
    assert.match(String(response.json.error_description), new RegExp(`the ${field[0].toLowerCase()} header`), `description with ${field[0]}`);
  }
  assert.equal(gateway.upstream.received.length, before, 'nothing reached the upstream');

  const denials = (await overrideDenials()).slice(deniedBefore);
  assert.equal(denials.length, fields.length, 'each rejection is audited');
  assert.equal(denials[0]?.user, gateway.world.user.id);
  assert.equal(denials[0]?.agent, gateway.world.agentId);
  assert.equal((denials[0]?.target as Record<string, unknown>).path, '/items/1');
  assert.equal((denials[0]?.reason as Record<string, unknown>).override, 'the x-http-method-override header');
});

test('gateway rejects override parameters', async () => {
  const boundary = 'mandate-boundary';
  const multipart = [`--${boundary}`, 'Content-Disposition: form-data; name="_method"', '', 'DELETE', `--${boundary}--`, ''].join('\r\n');
  const cases: Array<{ label: string; path: string; method?: string; headers?: Array<[string, string]>; body?: string; source: string }> = [
    { label: 'query _method', path: '/items/1?_method=DELETE', source: 'the query parameter _method' },
    { label: 'encoded query _method', path: '/items/1?%5Fmethod=DELETE', source: 'the query parameter _method' },
    { label: 'upper-case query _METHOD', path: '/items/1?_METHOD=DELETE', source: 'the query parameter _method' },
    { label: 'query _HttpMethod', path: '/items/1?_HttpMethod=PATCH', source: 'the query parameter _httpmethod' },
    { label: 'query x-http-method-override', path: '/items/1?x-http-method-override=DELETE', source: 'the query parameter x_http_method_override' },
    { label: 'form body _method', path: '/items', method: 'POST', headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: 'name=report&_method=DELETE', source: 'the body field _method' },
    { label: 'multipart body _method', path: '/items', method: 'POST', headers: [['Content-Type', `multipart/form-data; boundary=${boundary}`]], body: multipart, source: 'the body field _method' },
    { label: 'JSON body _method', path: '/items', method: 'POST', headers: [['Content-Type', 'application/json']], body: '{"name":"report","_method":"DELETE"}', source: 'the body field _method' },
  ];

  const before = gateway.upstream.received.length;
  for (const item of cases) {
    const response = await send(item.path, item.headers ?? [], { method: item.method, body: item.body });
    assert.equal(response.status, 400, `status for ${item.label}`);
    assert.equal(response.json.error, 'invalid_request', `error for ${item.label}`);
    assert.match(String(response.json.error_description), new RegExp(item.source), `description for ${item.label}`);
  }
  assert.equal(gateway.upstream.received.length, before, 'nothing reached the upstream');
});

test('gateway passes bodies without overrides', async () => {
  const json = await send('/items', [['Content-Type', 'application/json']], { method: 'POST', body: '{"method":"DELETE","nested":{"_method":"DELETE"}}' });
  assert.equal(json.status, 200, JSON.stringify(json.json));
  const form = await send('/items?method=x', [['Content-Type', 'application/x-www-form-urlencoded']], { method: 'POST', body: 'name=report&method=fast' });
  assert.equal(form.status, 200, JSON.stringify(form.json));
  assert.equal(gateway.upstream.received.at(-1)?.body.toString('utf8'), 'name=report&method=fast');
});
