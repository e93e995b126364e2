import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adminOperations } from '../../src/admin/api.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { assertNoUnexpectedErrors, assertResponse, hostileTokens, send, snapshot, type Expected } from './requests.ts';

const JSON_HEADERS = { 'content-type': 'application/json' };

describe('admin API rejects hostile requests with RFC 9457 problems', () => {
  let server: TestServer;
  let api: AdminApi;
  let agentId: string;

  before(async () => {
    server = await startTestServer();
    api = await adminApi(server);
    await api.call('POST', '/roles', { name: 'reader', permissions: [{ resource: 'https://files.example', action: 'read' }] });
    await api.call('POST', '/users', { username: 'carol', password: 'correct horse battery' });
    await api.call('POST', '/resources', { name: 'files', identifier: 'https://files.example', upstream_base_url: 'https://files.example', actions: [{ name: 'read' }] });
    agentId = String((await api.call('POST', '/agents', { name: 'Existing agent' })).json.client_id);
  });
  after(async () => {
    assertNoUnexpectedErrors(server);
    await server.stop();
  });

  const bearer = () => ({ authorization: `Bearer ${api.token}` });
  const problem = (status: number, type: string): Expected => ({ status, problemType: type, challenge: null });

  /** Fills every path parameter of an operation with `value`. */
  const withParams = (path: string, value: string) => `/admin/v1${path.replace(/:[a-z_]+/g, value)}`;

  test('every operation rejects unauthenticated and forged tokens', async () => {
    const tokens = await hostileTokens(server, `${server.issuer}/admin`, api.clientId, api.clientId);
    const credentials: Array<[string, string | undefined, RegExp]> = [
      ['no token', undefined, /^Bearer realm="mandate"$/],
      ['Basic scheme', `Basic ${Buffer.from('a:b').toString('base64')}`, /^Bearer realm="mandate"$/],
      ['garbage token', `Bearer ${tokens.garbage}`, /error="invalid_token"/],
      ['alg none token', `Bearer ${tokens.noneTyped}`, /error="invalid_token"/],
      ['foreign key token', `Bearer ${tokens.foreign}`, /error="invalid_token"/],
      ['typ JWT token', `Bearer ${tokens.wrongTyp}`, /error="invalid_token"/],
      ['expired token', `Bearer ${tokens.expired}`, /error="invalid_token"/],
    ];

    for (const operation of adminOperations) {
      for (const [name, authorization, challenge] of credentials) {
        const label = `${operation.method} ${operation.path} ${name}`;
        const headers: Record<string, string> = { ...JSON_HEADERS, ...(authorization === undefined ? {} : { authorization }) };
        const response = await send(server, operation.method, withParams(operation.path, 'x'), headers, operation.body === undefined ? undefined : '{}');
        assertResponse(response, { status: 401, problemType: 'urn:mandate:problem:invalid-token', challenge }, label);
      }
    }
  });

  test('every operation rejects hostile paths, queries and bodies', async () => {
    const tables = ['users', 'user_roles', 'roles', 'role_permissions', 'clients', 'client_roles', 'resources', 'resource_actions', 'connections', 'delegations', 'audit_log'] as const;
    const before = await snapshot(server.ctx, [...tables]);
    let count = 0;

    for (const operation of adminOperations) {
      const hasParams = operation.path.includes(':');
      const body = operation.body === undefined ? undefined : '{}';
      const attempts: Array<{ name: string; path: string; headers?: Record<string, string>; body?: string | undefined; expected: Expected }> = [
        { name: 'unknown query parameter', path: `${withParams(operation.path, 'carol')}?unknown=1`, body, expected: problem(400, 'urn:mandate:problem:invalid-input') },
        { name: 'NUL in query', path: `${withParams(operation.path, 'carol')}?user=%00`, body, expected: problem(400, 'urn:mandate:problem:bad-request') },
        { name: 'bad encoding in query', path: `${withParams(operation.path, 'carol')}?user=%zz`, body, expected: problem(400, 'urn:mandate:problem:invalid-input') },
      ];
      if (hasParams) {
        attempts.push(
          { name: 'unknown id', path: withParams(operation.path, 'unknown-id'), body: operation.body === undefined ? undefined : validBody(operation.operationId), expected: problem(404, 'urn:mandate:problem:not-found') },
          { name: 'NUL in path', path: withParams(operation.path, 'x%00'), body, expected: problem(400, 'urn:mandate:problem:bad-request') },
          { name: 'bad encoding in path', path: withParams(operation.path, '%zz'), body, expected: problem(400, 'urn:mandate:problem:bad-request') },
          { name: '3000-character id', path: withParams(operation.path, 'i'.repeat(3000)), body, expected: problem(414, 'urn:mandate:problem:bad-request') },
        );
      }
      if (operation.body !== undefined) {
        const path = withParams(operation.path, operation.path.includes(':client_id') ? agentId : operation.path.includes(':resource') ? 'files' : 'carol');
        attempts.push(
          { name: 'malformed JSON', path, body: '{"name":', expected: problem(400, 'urn:mandate:problem:bad-request') },
          { name: 'JSON array', path, body: '[]', expected: problem(400, 'urn:mandate:problem:invalid-input') },
          { name: 'JSON string', path, body: '"x"', expected: problem(400, 'urn:mandate:problem:invalid-input') },
          { name: 'JSON null', path, body: 'null', expected: problem(400, 'urn:mandate:problem:invalid-input') },
          { name: '__proto__ key', path, body: '{"__proto__":{"admin":true}}', expected: problem(400, 'urn:mandate:problem:bad-request') },
          { name: 'NUL in a string', path, body: '{"name":"a\\u0000b","reason":"\\u0000","role":"\\u0000","credential":"\\u0000"}', expected: problem(400, 'urn:mandate:problem:bad-request') },
          { name: 'form body', path, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=x', expected: problem(415, 'urn:mandate:problem:bad-request') },
          { name: 'text body', path, headers: { 'content-type': 'text/plain' }, body: 'name=x', expected: problem(400, 'urn:mandate:problem:invalid-input') },
          { name: 'unknown media type', path, headers: { 'content-type': 'application/xml' }, body: '<a/>', expected: problem(415, 'urn:mandate:problem:bad-request') },
          { name: 'body over 1 MiB', path, body: JSON.stringify({ name: 'n'.repeat(1024 * 1024) }), expected: problem(413, 'urn:mandate:problem:bad-request') },
          { name: 'deeply nested body', path, body: `${'['.repeat(5000)}${']'.repeat(5000)}`, expected: problem(400, 'urn:mandate:problem:invalid-input') },
        );
      }

      for (const attempt of attempts) {
        const headers = { ...(attempt.body === undefined ? {} : JSON_HEADERS), ...bearer(), ...attempt.headers };
        const response = await send(server, operation.method, attempt.path, headers, attempt.body);
        assertResponse(response, attempt.expected, `${operation.method} ${operation.path} ${attempt.name}`);
        count += 1;
      }
    }

    assert.ok(count >= 150, `${count} attempts`);
    assert.deepEqual(await snapshot(server.ctx, [...tables]), before);
  });

  test('unknown routes and wrong methods are problems', async () => {
    const cases: Array<[string, string]> = [
      ['GET', '/admin/v1/unknown'],
      ['PATCH', '/admin/v1/users'],
      ['DELETE', '/admin/v1/roles'],
      ['GET', '/admin/v1/users/carol/disable'],
      ['GET', '/admin/v2/users'],
    ];
    for (const [method, path] of cases) {
      const response = await send(server, method, path, bearer());
      assertResponse(response, { status: 404, problemType: 'about:blank' }, `${method} ${path}`);
    }
  });

  test('a create that violates a constraint writes nothing', async () => {
    const tables = ['users', 'user_roles', 'roles', 'role_permissions', 'clients', 'client_roles', 'resources', 'resource_actions', 'connections', 'audit_log'] as const;
    const before = await snapshot(server.ctx, [...tables]);

    const cases: Array<[string, string, string, unknown, number, string]> = [
      ['duplicate user with roles', 'POST', '/users', { username: 'carol', password: 'correct horse battery', roles: ['reader'] }, 409, 'urn:mandate:problem:conflict'],
      ['user with an unknown role', 'POST', '/users', { username: 'dave', password: 'correct horse battery', roles: ['reader', 'missing'] }, 400, 'urn:mandate:problem:invalid-input'],
      ['duplicate role with permissions', 'POST', '/roles', { name: 'reader', permissions: [{ resource: '*', action: '*' }] }, 409, 'urn:mandate:problem:conflict'],
      ['duplicate agent with roles', 'POST', '/agents', { name: 'Existing agent', roles: ['reader'] }, 409, 'urn:mandate:problem:conflict'],
      ['agent with an unknown owner', 'POST', '/agents', { name: 'New agent', owner: 'nobody', roles: ['reader'] }, 400, 'urn:mandate:problem:invalid-input'],
      ['duplicate resource name with actions', 'POST', '/resources', { name: 'files', identifier: 'https://other.example', actions: [{ name: 'write' }] }, 409, 'urn:mandate:problem:conflict'],
      ['duplicate resource identifier with actions', 'POST', '/resources', { name: 'other', identifier: 'https://files.example', actions: [{ name: 'write' }] }, 409, 'urn:mandate:problem:conflict'],
      ['credential for an unknown resource', 'PUT', '/users/carol/credentials/unknown', { credential: 'secret-value' }, 404, 'urn:mandate:problem:not-found'],
      ['role for an unknown user', 'POST', '/users/nobody/roles', { role: 'reader' }, 404, 'urn:mandate:problem:not-found'],
    ];
    for (const [name, method, path, body, status, type] of cases) {
      const response = await send(server, method, `/admin/v1${path}`, { ...JSON_HEADERS, ...bearer() }, JSON.stringify(body));
      assertResponse(response, problem(status, type), name);
    }

    assert.deepEqual(await snapshot(server.ctx, [...tables]), before);
  });
});

/** Returns a body that passes validation, so the request reaches the lookup of its path ids. */
function validBody(operationId: string): string {
  switch (operationId) {
    case 'grantUserRole':
    case 'grantAgentRole':
      return JSON.stringify({ role: 'reader' });
    case 'setCredential':
      return JSON.stringify({ credential: 'secret-value' });
    case 'makeRegisteredClientAgent':
      return JSON.stringify({ name: 'Adopted agent' });
    default:
      return '{}';
  }
}
