import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { readAudit } from '../../src/audit/verify.ts';
import { startGatewayFixture, type GatewayFixture } from './gateway-fixture.ts';

let gateway: GatewayFixture;

before(async () => {
  gateway = await startGatewayFixture();
});

after(() => gateway.stop());

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: Record<string, unknown>;
}

/** Sends a request with the target exactly as given (fetch would re-encode parts of the query). */
async function send(target: string, init: { method?: string; authorization?: string; body?: string | Buffer; contentType?: string; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  const url = new URL(gateway.server.issuer);
  const headers: Record<string, string> = { ...init.headers };
  if (init.authorization !== undefined) headers.authorization = init.authorization;
  if (init.contentType !== undefined) headers['content-type'] = init.contentType;
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: url.hostname, port: Number(url.port), path: target, method: init.method ?? 'GET', headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = { text };
        }
        resolve({ status: response.statusCode ?? 0, headers: response.headers, json });
      });
    });
    outgoing.on('error', reject);
    outgoing.end(init.body);
  });
}

/** Reads every stored row of a table as one string, to search it for a secret. */
async function tableText(table: 'audit_log' | 'approvals'): Promise<string> {
  const result = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)}`.execute(gateway.server.ctx.db);
  return JSON.stringify(result.rows);
}

async function deniedEntries(): Promise<Record<string, unknown>[]> {
  const records = await readAudit(gateway.server.ctx.db, { limit: 5000 });
  return records.filter((record) => record.event.event === 'gateway.denied').map((record) => record.event as unknown as Record<string, unknown>);
}

test('query access token is rejected before storage', async () => {
  const upstreamCalls = gateway.upstream.received.length;
  const approvalsBefore = await gateway.server.ctx.db.selectFrom('approvals').select('id').execute();

  // POST /send needs approval: a forwarded query would land in an approval row, its webhook and page.
  const withHeader = await send(`/gateway/${gateway.world.resourceName}/send?access_token=${gateway.token}`, { method: 'POST', authorization: `Bearer ${gateway.token}`, body: '{"to":"bob"}', contentType: 'application/json' });
  assert.equal(withHeader.status, 400);
  assert.equal(withHeader.json.error, 'invalid_request');
  assert.match(String(withHeader.json.error_description), /parameter access_token/);
  assert.match(String(withHeader.headers['www-authenticate']), /^Bearer realm="mandate", error="invalid_request"/);

  const withoutHeader = await send(`/gateway/${gateway.world.resourceName}/items/1?access_token=${gateway.token}`);
  assert.equal(withoutHeader.status, 400);
  assert.equal(withoutHeader.json.error, 'invalid_request');

  assert.equal(gateway.upstream.received.length, upstreamCalls, 'nothing reached the upstream');
  const approvalsAfter = await gateway.server.ctx.db.selectFrom('approvals').select('id').execute();
  assert.equal(approvalsAfter.length, approvalsBefore.length, 'no approval was requested');

  assert.equal((await tableText('audit_log')).includes(gateway.token), false, 'audit_log');
  assert.equal((await tableText('approvals')).includes(gateway.token), false, 'approvals');
  assert.equal(gateway.server.logs.join('').includes(gateway.token), false, 'log output');
  assert.equal(JSON.stringify(withHeader).includes(gateway.token), false, 'response');
});

test('query token denial is audited', async () => {
  const response = await send(`/gateway/${gateway.world.resourceName}/items/7?view=full&access_token=${gateway.token}`, { authorization: `Bearer ${gateway.token}` });
  assert.equal(response.status, 400);

  const entry = (await deniedEntries()).find((event) => (event.reason as Record<string, unknown>).raw_path === '/items/7');
  assert.ok(entry, 'a gateway.denied entry names the path without its query');
  const reason = entry.reason as Record<string, unknown>;
  assert.equal(reason.check, 'query_credential');
  assert.equal(reason.parameter, 'access_token');
  assert.equal(typeof reason.token_digest, 'string', 'the header token is recorded as a digest');
  assert.equal((entry.target as Record<string, unknown>).path, undefined, 'the target has no query');
  assert.equal(JSON.stringify(entry).includes('view=full'), false, 'the query is not recorded');
});

test('query credential spellings are rejected', async () => {
  const value = 'not-a-real-token-Kd83hQ';
  const cases: Array<[query: string, parameter: string]> = [
    [`%61ccess_token=${value}`, 'access_token'],
    [`access%5Ftoken=${value}`, 'access_token'],
    [`%2561ccess_token=${value}`, 'access_token'],
    [`%u0061ccess_token=${value}`, 'access_token'],
    [`ACCESS_TOKEN=${value}`, 'access_token'],
    [`Access_Token=${value}`, 'access_token'],
    [`access_token[]=${value}`, 'access_token'],
    [`access_token[0]=${value}`, 'access_token'],
    [`access.token=${value}`, 'access_token'],
    [`access+token=${value}`, 'access_token'],
    [`access[token=${value}`, 'access_token'],
    [`%20access_token=${value}`, 'access_token'],
    [`access_token%00x=${value}`, 'access_token'],
    [`view=full;access_token=${value}`, 'access_token'],
    [`view=full&access_token`, 'access_token'],
    [`refresh_token=${value}`, 'refresh_token'],
    [`id_token_hint=${value}`, 'id_token_hint'],
    [`client_secret=${value}`, 'client_secret'],
    [`password=${value}`, 'password'],
  ];

  const upstreamCalls = gateway.upstream.received.length;
  for (const [query, parameter] of cases) {
    const response = await send(`/gateway/${gateway.world.resourceName}/items/1?${query}`, { authorization: `Bearer ${gateway.token}` });
    assert.equal(response.status, 400, `status for ?${query}`);
    assert.equal(response.json.error, 'invalid_request', `error for ?${query}`);
    assert.match(String(response.json.error_description), new RegExp(`parameter ${parameter}\\.`), `parameter for ?${query}`);
  }
  assert.equal(gateway.upstream.received.length, upstreamCalls, 'nothing reached the upstream');
  assert.equal(gateway.server.logs.join('').includes(value), false, 'log output');
  assert.equal((await tableText('audit_log')).includes(value), false, 'audit_log');
});

test('similar parameter names still pass', async () => {
  const response = await send(`/gateway/${gateway.world.resourceName}/items/1?accessory=1&token_type=x&my_access_token_count=2`, { authorization: `Bearer ${gateway.token}` });
  assert.equal(response.status, 200);
  assert.equal(gateway.upstream.received.at(-1)?.url, '/api/items/1?accessory=1&token_type=x&my_access_token_count=2');
});

test('request log redacts query credentials', async () => {
  const value = 'log-probe-Vn27xPq4Ld';
  await send(`/gateway/${gateway.world.resourceName}/items/1?access_token=${value}`);
  await send(`/gateway/${gateway.world.resourceName}?access_token=${value}`);
  await send(`/gateway/${gateway.world.resourceName}/%zz?access_token=${value}`);
  await send(`/userinfo?access_token=${value}`);
  await send(`/token?client_secret=${value}`, { method: 'POST', body: 'grant_type=client_credentials', contentType: 'application/x-www-form-urlencoded' });

  const logs = gateway.server.logs.join('');
  assert.equal(logs.includes(value), false, 'no log line has the value');
  assert.match(logs, new RegExp(`"url":"/gateway/${gateway.world.resourceName}/items/1\\?access_token=\\[redacted\\]"`));
  assert.match(logs, /"url":"\/userinfo\?access_token=\[redacted\]"/);
  assert.match(logs, /"url":"\/token\?client_secret=\[redacted\]"/);
});

test('request log redacts API keys', async () => {
  const value = 'api-key-probe-Qm81Zr';
  const response = await send(`/gateway/${gateway.world.resourceName}/items/1?api_key=${value}&code=${value}&page=2`, { authorization: `Bearer ${gateway.token}` });
  assert.equal(response.status, 200, 'an API key parameter is forwarded as sent');
  assert.equal(gateway.upstream.received.at(-1)?.url, `/api/items/1?api_key=${value}&code=${value}&page=2`);

  const logs = gateway.server.logs.join('');
  assert.equal(logs.includes(value), false, 'no log line has the value');
  assert.match(logs, new RegExp(`"url":"/gateway/${gateway.world.resourceName}/items/1\\?api_key=\\[redacted\\]&code=\\[redacted\\]&page=2"`));
});

test('form body access token is rejected', async () => {
  const upstreamCalls = gateway.upstream.received.length;
  const approvalsBefore = await gateway.server.ctx.db.selectFrom('approvals').select('id').execute();
  const multipart = (disposition: string) => ['--b1', `Content-Disposition: ${disposition}`, '', gateway.token, '--b1--', ''].join('\r\n');
  const cases: Array<[path: string, body: string | Buffer, contentType: string]> = [
    ['/send', `to=bob&access_token=${gateway.token}`, 'application/x-www-form-urlencoded'],
    ['/items', `Access.Token=${gateway.token}`, 'application/x-www-form-urlencoded; charset=utf-8'],
    ['/items', `%61ccess_token=${gateway.token}`, 'Application/X-WWW-Form-Urlencoded'],
    ['/items', Buffer.from(`access_token=${gateway.token}`, 'utf16le'), 'application/x-www-form-urlencoded; charset=utf-16le'],
    ['/items', multipart('form-data; name="access_token"'), 'multipart/form-data; boundary=b1'],
    // An RFC 8187 extended value, which some multipart parsers decode.
    ['/items', multipart("form-data; name*=UTF-8''access_token"), 'multipart/form-data; boundary=b1'],
    ['/items', multipart('form-data; name="note"; name="access_token"'), 'multipart/form-data; boundary=b1'],
    ['/items', multipart('form-data; name="\uff41ccess_token"'), 'multipart/form-data; boundary=b1'],
    ['/items', multipart('form-data; name=access_token'), 'multipart/mixed; boundary=b1'],
  ];

  for (const [path, body, contentType] of cases) {
    const response = await send(`/gateway/${gateway.world.resourceName}${path}`, { method: 'POST', authorization: `Bearer ${gateway.token}`, body, contentType });
    assert.equal(response.status, 400, `status for ${contentType}: ${body.toString().slice(0, 60)}`);
    assert.equal(response.json.error, 'invalid_request');
    assert.match(String(response.json.error_description), /form field access_token\./);
    assert.match(String(response.headers['www-authenticate']), /^Bearer realm="mandate", error="invalid_request"/);
  }
  const withoutHeader = await send(`/gateway/${gateway.world.resourceName}/items`, { method: 'POST', body: `access_token=${gateway.token}`, contentType: 'application/x-www-form-urlencoded' });
  assert.equal(withoutHeader.status, 400, 'a token only in the body gets the same error, not 401');

  assert.equal(gateway.upstream.received.length, upstreamCalls, 'nothing reached the upstream');
  const approvalsAfter = await gateway.server.ctx.db.selectFrom('approvals').select('id').execute();
  assert.equal(approvalsAfter.length, approvalsBefore.length, 'no approval was requested');
  assert.equal((await tableText('audit_log')).includes(gateway.token), false, 'audit_log');
  assert.equal(gateway.server.logs.join('').includes(gateway.token), false, 'log output');

  const entry = (await deniedEntries()).find((event) => (event.reason as Record<string, unknown>).check === 'body_credential');
  assert.ok(entry, 'the denial is audited');
  assert.equal((entry.reason as Record<string, unknown>).parameter, 'access_token');
});

test('other body fields are forwarded', async () => {
  const form = await send(`/gateway/${gateway.world.resourceName}/items`, { method: 'POST', authorization: `Bearer ${gateway.token}`, body: 'password=data-field&my_access_token=1', contentType: 'application/x-www-form-urlencoded' });
  assert.equal(form.status, 200, 'a form field named password is data for the upstream');

  const json = await send(`/gateway/${gateway.world.resourceName}/items`, { method: 'POST', authorization: `Bearer ${gateway.token}`, body: '{"access_token":"upstream-record"}', contentType: 'application/json' });
  assert.equal(json.status, 200, 'RFC 6750 §2.2 covers form bodies only, so a JSON member is data');
  assert.equal(gateway.upstream.received.at(-1)?.body.toString('utf8'), '{"access_token":"upstream-record"}');
});

test('content-coded body is rejected', async () => {
  const upstreamCalls = gateway.upstream.received.length;
  const body = gzipSync(`access_token=${gateway.token}&_method=DELETE`);
  const response = await send(`/gateway/${gateway.world.resourceName}/items`, { method: 'POST', authorization: `Bearer ${gateway.token}`, body, contentType: 'application/x-www-form-urlencoded', headers: { 'content-encoding': 'gzip' } });
  assert.equal(response.status, 415);
  assert.equal(response.json.error, 'invalid_request');
  assert.match(String(response.json.error_description), /Content-Encoding: gzip/);
  assert.equal(response.headers['accept-encoding'], 'identity', 'RFC 7694: the codings the gateway accepts');
  assert.equal(gateway.upstream.received.length, upstreamCalls, 'nothing reached the upstream');

  const identity = await send(`/gateway/${gateway.world.resourceName}/items`, { method: 'POST', authorization: `Bearer ${gateway.token}`, body: 'note=1', contentType: 'application/x-www-form-urlencoded', headers: { 'content-encoding': 'identity' } });
  assert.equal(identity.status, 200, 'the identity coding changes nothing');
});

test('multipart override spellings are rejected', async () => {
  for (const disposition of ["form-data; name*=UTF-8''_method", 'form-data; name="note"; name="_method"']) {
    const body = ['--b1', `Content-Disposition: ${disposition}`, '', 'DELETE', '--b1--', ''].join('\r\n');
    const response = await send(`/gateway/${gateway.world.resourceName}/items`, { method: 'POST', authorization: `Bearer ${gateway.token}`, body, contentType: 'multipart/form-data; boundary=b1' });
    assert.equal(response.status, 400, disposition);
    assert.match(String(response.json.error_description), /the body field _method/, disposition);
  }
});
