import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createApproval } from '../../src/approvals/service.ts';
import { createDelegation } from '../../src/oauth/delegation.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { PASSWORD, seedWorld } from '../fixtures.ts';
import { FORM, HTML_TYPE, assertNoUnexpectedErrors, assertResponse, send, signIn, snapshot, type Expected, type PageSession } from './requests.ts';

interface Case extends Expected {
  name: string;
  method: string;
  path: string;
  /** Cookie field; the signed-in session unless given. */
  cookie?: string;
  mediaType?: string;
  body?: string;
}

describe('sign-in, delegation and approval pages reject hostile requests', () => {
  let server: TestServer;
  let world: Awaited<ReturnType<typeof seedWorld>>;
  let session: PageSession;
  let bobDelegation: string;
  let bobApproval: string;
  /** The CSRF token of Alice's own approval page: decision forms take only a token of the signed-in session. */
  let approvalCsrf: string;
  /** The CSRF token of Alice's delegations page, which its revoke forms take. */
  let revokeCsrf: string;

  before(async () => {
    server = await startTestServer();
    world = await seedWorld(server.ctx);
    session = await signIn(server, 'alice');

    const delegation = await createDelegation(server.ctx, { userId: world.bob.id, clientId: world.agent.client.client_id, resourceId: world.resource.id, scope: ['mail.read'], source: 'consent' });
    bobDelegation = delegation.id;
    const created = await createApproval(server.ctx, { userId: world.bob.id, agentId: world.agent.client.client_id, resource: world.resource.identifier, action: 'mail.send', method: 'POST', path: '/messages', delegationId: delegation.id, resourceId: world.resource.id, body: Buffer.from('{}') });
    bobApproval = created.approval.id;

    const aliceDelegation = await createDelegation(server.ctx, { userId: world.alice.id, clientId: world.agent.client.client_id, resourceId: world.resource.id, scope: ['mail.read'], source: 'consent' });
    const own = await createApproval(server.ctx, { userId: world.alice.id, agentId: world.agent.client.client_id, resource: world.resource.identifier, action: 'mail.send', method: 'POST', path: '/messages', delegationId: aliceDelegation.id, resourceId: world.resource.id, body: Buffer.from('{}') });
    const page = await send(server, 'GET', `/approvals/${own.approval.id}`, { cookie: session.cookie });
    approvalCsrf = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '';
    assert.notEqual(approvalCsrf, '', 'the own approval page has a CSRF token');
    const delegations = await send(server, 'GET', '/account/delegations', { cookie: session.cookie });
    revokeCsrf = /name="_csrf" value="([^"]+)"/.exec(delegations.text)?.[1] ?? '';
    assert.notEqual(revokeCsrf, '', 'the delegations page has a CSRF token');
  });
  after(async () => {
    assertNoUnexpectedErrors(server);
    await server.stop();
  });

  const csrfOnly = () => session.cookie.split('; ').filter((cookie) => cookie.startsWith('_csrf=')).join('; ');
  const withCsrf = (fields = '') => `_csrf=${encodeURIComponent(session.csrf)}${fields === '' ? '' : `&${fields}`}`;
  const withApprovalCsrf = () => `_csrf=${encodeURIComponent(approvalCsrf)}`;
  const withRevokeCsrf = () => `_csrf=${encodeURIComponent(revokeCsrf)}`;
  const html = (status: number): Expected => ({ status, contentType: HTML_TYPE });
  const csrfRejected: Expected = { status: 403, error: 'invalid_request' };

  test('each case gets its error and writes nothing', async () => {
    const tables = ['sessions', 'delegations', 'approvals', 'audit_log', 'refresh_tokens'] as const;
    const before = await snapshot(server.ctx, [...tables]);
    const revokedBefore = await server.ctx.db.selectFrom('delegations').select('id').where('revoked_at', 'is not', null).execute();

    const cases: Case[] = [
      // GET /login: a bad return_to falls back to the default page.
      { name: 'login return_to absolute', method: 'GET', path: '/login?return_to=https://attacker.example/', ...html(200) },
      { name: 'login return_to protocol-relative', method: 'GET', path: '/login?return_to=//attacker.example', ...html(200) },
      { name: 'login return_to repeated', method: 'GET', path: '/login?return_to=/a&return_to=/b', ...html(200) },
      { name: 'login return_to bad percent-encoding', method: 'GET', path: '/login?return_to=%zz%E0', ...html(200) },
      { name: 'login return_to CRLF', method: 'GET', path: '/login?return_to=/a%0d%0aSet-Cookie:%20x=1', ...html(200) },
      { name: 'login return_to NUL', method: 'GET', path: '/login?return_to=/a%00', status: 400, error: 'invalid_request' },
      { name: 'login bad path encoding', method: 'GET', path: '/login%zz', status: 400, error: 'invalid_request' },

      // POST /login
      { name: 'login CSRF token missing', method: 'POST', path: '/login', body: `username=alice&password=${encodeURIComponent(PASSWORD)}`, ...csrfRejected },
      { name: 'login CSRF token wrong', method: 'POST', path: '/login', body: `_csrf=forged&username=alice&password=${encodeURIComponent(PASSWORD)}`, ...csrfRejected },
      { name: 'login CSRF cookie missing', method: 'POST', path: '/login', cookie: '', body: withCsrf(`username=alice&password=${encodeURIComponent(PASSWORD)}`), ...csrfRejected },
      { name: 'login text/plain', method: 'POST', path: '/login', mediaType: 'text/plain', body: withCsrf('username=alice'), ...csrfRejected },
      { name: 'login no content type', method: 'POST', path: '/login', mediaType: '', body: withCsrf('username=alice'), status: 415, error: 'invalid_request' },
      { name: 'login JSON with CSRF token', method: 'POST', path: '/login', mediaType: 'application/json', body: JSON.stringify({ _csrf: session.csrf, username: 'alice', password: PASSWORD }), status: 400, error: 'invalid_request' },
      { name: 'login malformed JSON', method: 'POST', path: '/login', mediaType: 'application/json', body: '{"_csrf":', status: 400, error: 'invalid_request' },
      { name: 'login username repeated', method: 'POST', path: '/login', body: withCsrf('username=alice&username=bob&password=x'), status: 400, error: 'invalid_request' },
      { name: 'login wrong password', method: 'POST', path: '/login', body: withCsrf('username=alice&password=wrong'), ...html(401) },
      { name: 'login fields missing', method: 'POST', path: '/login', body: withCsrf(), ...html(401) },
      { name: 'login username 10 KB', method: 'POST', path: '/login', body: withCsrf(`username=${'u'.repeat(10_000)}&password=x`), ...html(401) },
      { name: 'login password 60 KB', method: 'POST', path: '/login', body: withCsrf(`username=alice&password=${'p'.repeat(60_000)}`), ...html(401) },
      { name: 'login username with NUL', method: 'POST', path: '/login', body: withCsrf('username=alice%00&password=x'), status: 400, error: 'invalid_request' },
      { name: 'login invalid UTF-8', method: 'POST', path: '/login', body: withCsrf('username=%C3%28%FF&password=%E0%A4'), ...html(401) },
      { name: 'login form over 64 KiB', method: 'POST', path: '/login', body: withCsrf(`pad=${'x'.repeat(70_000)}`), status: 413, error: 'invalid_request' },

      // Logout: /logout only shows the confirmation form; /logout/confirm signs out and needs the CSRF token.
      { name: 'logout request asks to confirm', method: 'POST', path: '/logout', body: '', ...html(200) },
      { name: 'logout client_id repeated', method: 'GET', path: '/logout?client_id=a&client_id=b', ...html(400) },
      { name: 'logout confirm CSRF token missing', method: 'POST', path: '/logout/confirm', body: '', ...csrfRejected },
      { name: 'logout confirm CSRF token wrong', method: 'POST', path: '/logout/confirm', body: '_csrf=forged', ...csrfRejected },
      { name: 'logout confirm with the sign-in page token', method: 'POST', path: '/logout/confirm', body: withCsrf(), ...csrfRejected },
      { name: 'logout confirm by GET', method: 'GET', path: '/logout/confirm', status: 404, error: 'invalid_request' },
      { name: 'logout by HEAD', method: 'HEAD', path: '/logout', status: 404 },

      // My delegations
      { name: 'delegations signed out', method: 'GET', path: '/account/delegations', cookie: '', status: 303, location: /^\/login\?return_to=%2Faccount%2Fdelegations$/ },
      { name: 'delegations forged session', method: 'GET', path: '/account/delegations', cookie: 'mandate_session=forged', status: 303, location: /^\/login\?/ },
      { name: 'delegations session bad encoding', method: 'GET', path: '/account/delegations', cookie: 'mandate_session=%zz%00', status: 303, location: /^\/login\?/ },
      { name: 'delegations notice __proto__', method: 'GET', path: '/account/delegations?notice=__proto__', ...html(200) },
      { name: 'delegations notice repeated', method: 'GET', path: '/account/delegations?notice=revoked&notice=revoked', ...html(200) },
      { name: 'revoke CSRF token missing', method: 'POST', path: `/account/delegations/${bobDelegation}/revoke`, body: '', ...csrfRejected },
      { name: 'revoke CSRF token wrong', method: 'POST', path: `/account/delegations/${bobDelegation}/revoke`, body: '_csrf=forged', ...csrfRejected },
      { name: 'revoke with the sign-in page token', method: 'POST', path: `/account/delegations/${bobDelegation}/revoke`, body: withCsrf(), ...csrfRejected },
      { name: 'revoke another person\'s delegation', method: 'POST', path: `/account/delegations/${bobDelegation}/revoke`, body: withRevokeCsrf(), status: 303, location: /notice=not-found$/ },
      { name: 'revoke unknown id', method: 'POST', path: '/account/delegations/dlg_unknown/revoke', body: withRevokeCsrf(), status: 303, location: /notice=not-found$/ },
      { name: 'revoke id with NUL', method: 'POST', path: '/account/delegations/dlg%00/revoke', body: withRevokeCsrf(), status: 400, error: 'invalid_request' },
      { name: 'revoke id bad encoding', method: 'POST', path: '/account/delegations/%zz/revoke', body: withRevokeCsrf(), status: 400, error: 'invalid_request' },
      { name: 'revoke id 3000 characters', method: 'POST', path: `/account/delegations/${'d'.repeat(3000)}/revoke`, body: withRevokeCsrf(), status: 414, error: 'invalid_request' },
      { name: 'revoke signed out', method: 'POST', path: `/account/delegations/${bobDelegation}/revoke`, cookie: csrfOnly(), body: withCsrf(), status: 303, location: /^\/login\?/ },
      { name: 'revoke by GET', method: 'GET', path: `/account/delegations/${bobDelegation}/revoke`, status: 404, error: 'invalid_request' },

      // Approvals
      { name: 'approval signed out', method: 'GET', path: `/approvals/${bobApproval}`, cookie: '', status: 303, location: /^\/login\?/ },
      { name: 'approval of another person', method: 'GET', path: `/approvals/${bobApproval}`, ...html(404) },
      { name: 'approval unknown id', method: 'GET', path: '/approvals/apr_unknown', ...html(404) },
      { name: 'approval id not an approval id', method: 'GET', path: '/approvals/..%2F..%2Fadmin', ...html(404) },
      { name: 'approval id with NUL', method: 'GET', path: '/approvals/apr_%00', status: 400, error: 'invalid_request' },
      { name: 'approval id bad encoding', method: 'GET', path: '/approvals/%zz', status: 400, error: 'invalid_request' },
      { name: 'approval id 3000 characters', method: 'GET', path: `/approvals/apr_${'a'.repeat(3000)}`, status: 414, error: 'invalid_request' },
      { name: 'approve CSRF token missing', method: 'POST', path: `/approvals/${bobApproval}/approve`, body: '', ...csrfRejected },
      { name: 'deny CSRF token wrong', method: 'POST', path: `/approvals/${bobApproval}/deny`, body: '_csrf=forged', ...csrfRejected },
      { name: 'approve with the sign-in page token', method: 'POST', path: `/approvals/${bobApproval}/approve`, body: withCsrf(), ...csrfRejected },
      { name: 'approve another person\'s approval', method: 'POST', path: `/approvals/${bobApproval}/approve`, body: withApprovalCsrf(), ...html(404) },
      { name: 'deny another person\'s approval', method: 'POST', path: `/approvals/${bobApproval}/deny`, body: withApprovalCsrf(), ...html(404) },
      { name: 'approve unknown id', method: 'POST', path: '/approvals/apr_unknown/approve', body: withApprovalCsrf(), ...html(404) },
      { name: 'approve signed out', method: 'POST', path: `/approvals/${bobApproval}/approve`, cookie: csrfOnly(), body: withApprovalCsrf(), ...csrfRejected },
      { name: 'approve by GET', method: 'GET', path: `/approvals/${bobApproval}/approve`, status: 404, error: 'invalid_request' },
      { name: 'approvals unknown decision', method: 'POST', path: `/approvals/${bobApproval}/maybe`, body: withCsrf(), status: 404, error: 'invalid_request' },
    ];

    for (const entry of cases) {
      const headers: Record<string, string> = { cookie: entry.cookie ?? session.cookie };
      if (entry.body !== undefined && entry.mediaType !== '') headers['content-type'] = entry.mediaType ?? FORM;
      if (headers.cookie === '') delete headers.cookie;
      const response = await send(server, entry.method, entry.path, headers, entry.body);
      assertResponse(response, entry, entry.name);
      if (entry.status === 200 && entry.path.startsWith('/login')) assert.match(response.text, /name="return_to" value="\/account\/delegations"/, `${entry.name}: return_to falls back`);
    }

    assert.deepEqual(await snapshot(server.ctx, [...tables]), before);
    assert.deepEqual(await server.ctx.db.selectFrom('delegations').select('id').where('revoked_at', 'is not', null).execute(), revokedBefore);
    const approval = await server.ctx.db.selectFrom('approvals').select(['status', 'decided_at']).where('id', '=', bobApproval).executeTakeFirstOrThrow();
    assert.equal(approval.status, 'pending');
    assert.equal(approval.decided_at, null);
  });

  test('sign-in with a header-breaking return_to redirects to the default', async () => {
    for (const returnTo of ['/a\r\nSet-Cookie: injected=1', '/ä', '/a b', '/\u2028']) {
      const body = new URLSearchParams({ _csrf: session.csrf, username: 'alice', password: PASSWORD, return_to: returnTo }).toString();
      const response = await send(server, 'POST', '/login', { 'content-type': FORM, cookie: csrfOnly() }, body);
      assertResponse(response, { status: 303, location: /^\/account\/delegations$/ }, `return_to ${JSON.stringify(returnTo)}`);
      assert.ok(!(response.headers['set-cookie'] ?? []).some((cookie) => cookie.startsWith('injected')), 'no injected cookie');
    }
  });
});
