import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createApproval } from '../../src/approvals/service.ts';
import { createDelegation } from '../../src/oauth/delegation.ts';
import { sha256Hex } from '../../src/store/ids.ts';
import type { Database } from '../../src/store/schema.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { createWorld, PASSWORD, type World } from '../gateway/world.ts';
import { requestSend } from '../ciba/ciba-world.ts';

/*
 * Every form that acts under a signed-in session takes only a CSRF token made for that session
 * and that form. Over real HTTP, for each form: the token of its own page works, and these are
 * rejected with 403 without any change in the database:
 * - the token of another person's session, sent with that session's `_csrf` cookie planted next
 *   to the victim's session cookie, as a sibling host can set it (cookie tossing);
 * - the cookie-based token of the sign-in page with its own `_csrf` cookie;
 * - a token of another form of the same session;
 * - no token.
 */

/** No upstream call is made here, so the resources point at a closed loopback port. */
const UNUSED_UPSTREAM = 'http://127.0.0.1:9';
const REDIRECT_URI = 'http://127.0.0.1/callback';
const CODE_CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const CSRF_REJECTED = { error: 'invalid_request', error_description: 'The form is missing its CSRF token or the token is invalid; reload the page and try again.' };

/** Tables whose row counts show that a rejected form changed nothing. */
const TABLES: Array<keyof Database> = ['sessions', 'delegations', 'authorization_codes', 'refresh_tokens', 'approvals', 'ciba_requests', 'audit_log'];

let server: TestServer;
let world: World;
let attackerWorld: World;
/** The cookies of the person whose forms are attacked, signed in. */
let person: Jar;
/** The cookies of another person, signed in, who wants the first person's browser to post a form. */
let attacker: Jar;

before(async () => {
  server = await startTestServer();
  world = await createWorld(server, UNUSED_UPSTREAM);
  attackerWorld = await createWorld(server, UNUSED_UPSTREAM);
  person = await signInWithFetch(world);
  attacker = await signInWithFetch(attackerWorld);
});

after(async () => {
  await server.stop();
});

/** Cookies of one client without a browser, by name. */
type Jar = Map<string, string>;

function cookieHeader(jar: Jar): string {
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
}

function storeCookies(jar: Jar, response: Response): void {
  for (const field of response.headers.getSetCookie()) {
    const [pair = ''] = field.split(';');
    const separator = pair.indexOf('=');
    jar.set(pair.slice(0, separator), pair.slice(separator + 1));
  }
}

function formToken(html: string): string | undefined {
  return /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
}

/** Loads the sign-in page with the cookies of `jar`, keeping the `_csrf` cookie it sets, and returns its token. */
async function signInPageToken(jar: Jar): Promise<string> {
  const page = await fetch(`${server.issuer}/login`, { headers: { cookie: cookieHeader(jar) } });
  storeCookies(jar, page);
  const token = formToken(await page.text());
  assert.ok(token !== undefined, 'the sign-in page has a CSRF token');
  return token;
}

/** Signs the world's person in through the real sign-in form, as a browser would. */
async function signInWithFetch(signedInWorld: World): Promise<Jar> {
  const jar: Jar = new Map();
  const token = await signInPageToken(jar);
  const response = await fetch(`${server.issuer}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader(jar) },
    body: new URLSearchParams({ _csrf: token, username: signedInWorld.user.username, password: PASSWORD }),
  });
  assert.equal(response.status, 303, 'the sign-in succeeds');
  storeCookies(jar, response);
  assert.ok(jar.has('mandate_session'), 'the sign-in set the session cookie');
  return jar;
}

/** Loads a page of a signed-in session and returns the CSRF token of its (first) form. */
async function pageToken(jar: Jar, path: string): Promise<string> {
  const page = await fetch(`${server.issuer}${path}`, { redirect: 'manual', headers: { cookie: cookieHeader(jar) } });
  assert.equal(page.status, 200, `GET ${path}`);
  const token = formToken(await page.text());
  assert.ok(token !== undefined, `${path} has a CSRF token`);
  return token;
}

async function postForm(path: string, jar: Jar, fields: Record<string, string>, token: string | undefined): Promise<Response> {
  const body = new URLSearchParams(fields);
  if (token !== undefined) body.set('_csrf', token);
  return fetch(`${server.issuer}${path}`, { method: 'POST', redirect: 'manual', headers: { cookie: cookieHeader(jar), 'content-type': 'application/x-www-form-urlencoded' }, body });
}

/** Path of a valid authorization request of the world's application, which renders the consent page. */
function authorizePath(consentWorld: World): string {
  return `/authorize?${new URLSearchParams(consentParameters(consentWorld))}`;
}

function consentParameters(consentWorld: World): Record<string, string> {
  return {
    response_type: 'code',
    client_id: consentWorld.applicationId,
    redirect_uri: REDIRECT_URI,
    scope: 'read',
    state: 'st',
    code_challenge: CODE_CHALLENGE,
    code_challenge_method: 'S256',
    resource: consentWorld.identifier,
  };
}

async function countRows(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of TABLES) {
    const row = await server.ctx.db.selectFrom(table).select((eb) => eb.fn.countAll().as('count')).executeTakeFirstOrThrow();
    counts[table] = Number(row.count);
  }
  return counts;
}

/** One session form: where its page is, where it posts, and what it changes. */
interface SessionForm {
  /** The cookies of the signed-in person who posts the form; the shared `person` unless given. */
  person?: Jar;
  /** The page of the person's form. */
  pagePath: string;
  /** The attacker's own page of the same form. */
  attackerPagePath: string;
  /** A page of another session form, for the person. */
  otherFormPath: string;
  action: string;
  fields: Record<string, string>;
  /** Reads the row that the form changes. */
  target(): Promise<unknown>;
  /** Checks the response and the database after the form was accepted. */
  assertAccepted(response: Response): Promise<void>;
}

/**
 * Registers the five cases for one form. `setUp` creates fresh records for each case, so the
 * accepted post of one case does not change what another case posts against.
 */
function describeSessionForm(name: string, setUp: () => Promise<SessionForm>): void {
  describe(name, () => {
    /** Posts with the person's session cookie and checks the 403 and that nothing changed. */
    async function assertRejected(form: SessionForm, cookies: Jar, token: string | undefined): Promise<void> {
      assert.equal(cookies.get('mandate_session'), (form.person ?? person).get('mandate_session'), 'the post carries the person\'s session cookie');
      const rowsBefore = await countRows();
      const targetBefore = await form.target();

      const response = await postForm(form.action, cookies, form.fields, token);
      assert.equal(response.status, 403);
      assert.deepEqual(await response.json(), CSRF_REJECTED);
      assert.deepEqual(await countRows(), rowsBefore, 'no rows were added or removed');
      assert.deepEqual(await form.target(), targetBefore, 'the form target is unchanged');
    }

    test('own page token accepted', async () => {
      const form = await setUp();
      const jar = form.person ?? person;
      const response = await postForm(form.action, jar, form.fields, await pageToken(jar, form.pagePath));
      await form.assertAccepted(response);
    });

    test('token of another session rejected', async () => {
      const form = await setUp();
      const attackerToken = await pageToken(attacker, form.attackerPagePath);
      const planted = new Map(form.person ?? person);
      planted.set('_csrf', attacker.get('_csrf') ?? '');
      await assertRejected(form, planted, attackerToken);
    });

    test('sign-in page token rejected', async () => {
      const form = await setUp();
      const cookies = new Map(form.person ?? person);
      // The person's own browser: the sign-in page token matches its `_csrf` cookie.
      const token = await signInPageToken(cookies);
      await assertRejected(form, cookies, token);
    });

    test('token of another form rejected', async () => {
      const form = await setUp();
      const jar = form.person ?? person;
      await assertRejected(form, jar, await pageToken(jar, form.otherFormPath));
    });

    test('missing token rejected', async () => {
      const form = await setUp();
      await assertRejected(form, form.person ?? person, undefined);
    });
  });
}

describeSessionForm('consent', async () => ({
  pagePath: authorizePath(world),
  attackerPagePath: authorizePath(attackerWorld),
  otherFormPath: '/logout',
  action: '/authorize/consent',
  fields: { ...consentParameters(world), decision: 'allow' },
  target: async () => server.ctx.db.selectFrom('delegations').select('id').where('user_id', '=', world.user.id).where('client_id', '=', world.applicationId).execute(),
  async assertAccepted(response) {
    assert.equal(response.status, 303);
    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
    assert.ok(location.searchParams.get('code'), 'the client receives a code');
    const delegations = await server.ctx.db.selectFrom('delegations').select('id').where('user_id', '=', world.user.id).where('client_id', '=', world.applicationId).where('revoked_at', 'is', null).execute();
    assert.ok(delegations.length > 0, 'the consent recorded a delegation');
  },
}));

describeSessionForm('sign-out confirmation', async () => {
  // A session of its own, so that the accepted case leaves the shared session for the other forms.
  const session = await signInWithFetch(world);
  const sessionRows = async () => server.ctx.db.selectFrom('sessions').select('id_hash').where('id_hash', '=', sha256Hex(session.get('mandate_session') ?? '')).execute();
  return {
    person: session,
    pagePath: '/logout',
    attackerPagePath: '/logout',
    otherFormPath: authorizePath(world),
    action: '/logout/confirm',
    fields: {},
    target: sessionRows,
    async assertAccepted(response) {
      assert.equal(response.status, 200);
      assert.match(await response.text(), /You are signed out/);
      const sessionCookie = /mandate_session=([^;]*)/.exec(response.headers.getSetCookie().join('\n'));
      assert.equal(sessionCookie?.[1], '', 'the session cookie is cleared');
      assert.deepEqual(await sessionRows(), [], 'the session ended');
    },
  };
});

describeSessionForm('delegation revocation', async () => {
  const delegation = await createDelegation(server.ctx, { userId: world.user.id, clientId: world.agentId, resourceId: world.resourceId, scope: ['read'], source: 'consent' });
  await createDelegation(server.ctx, { userId: attackerWorld.user.id, clientId: attackerWorld.agentId, resourceId: attackerWorld.resourceId, scope: ['read'], source: 'consent' });
  const revokedAt = async () => (await server.ctx.db.selectFrom('delegations').select('revoked_at').where('id', '=', delegation.id).executeTakeFirstOrThrow()).revoked_at;
  return {
    pagePath: '/account/delegations',
    attackerPagePath: '/account/delegations',
    otherFormPath: '/logout',
    action: `/account/delegations/${delegation.id}/revoke`,
    fields: {},
    target: revokedAt,
    async assertAccepted(response) {
      assert.equal(response.status, 303);
      assert.equal(response.headers.get('location'), '/account/delegations?notice=revoked');
      assert.notEqual(await revokedAt(), null);
    },
  };
});

let cibaRequests = 0;

/** Sends a CIBA request for the world's person and returns its id. */
async function cibaRequest(cibaWorld: World): Promise<string> {
  cibaRequests += 1;
  const bindingMessage = `CSRF ${cibaRequests}`;
  await requestSend(server, cibaWorld, undefined, { binding_message: bindingMessage });
  const row = await server.ctx.db.selectFrom('ciba_requests').select('id').where('user_id', '=', cibaWorld.user.id).where('binding_message', '=', bindingMessage).executeTakeFirstOrThrow();
  return row.id;
}

describeSessionForm('CIBA decision', async () => {
  const id = await cibaRequest(world);
  const status = async () => (await server.ctx.db.selectFrom('ciba_requests').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
  return {
    pagePath: `/approvals/ciba/${id}`,
    attackerPagePath: `/approvals/ciba/${await cibaRequest(attackerWorld)}`,
    otherFormPath: '/logout',
    action: `/approvals/ciba/${id}/approve`,
    fields: {},
    target: status,
    async assertAccepted(response) {
      assert.equal(response.status, 303);
      assert.equal(response.headers.get('location'), `/approvals/ciba/${id}`);
      assert.equal(await status(), 'approved');
    },
  };
});

/** Creates a pending approval of a `send` call for the world's person and returns its id. */
async function pendingApproval(approvalWorld: World): Promise<string> {
  const delegation = await createDelegation(server.ctx, { userId: approvalWorld.user.id, clientId: approvalWorld.agentId, resourceId: approvalWorld.resourceId, scope: ['send'], source: 'consent' });
  const created = await createApproval(server.ctx, {
    userId: approvalWorld.user.id,
    agentId: approvalWorld.agentId,
    resource: approvalWorld.identifier,
    action: 'send',
    method: 'POST',
    path: '/send/mail',
    delegationId: delegation.id,
    resourceId: approvalWorld.resourceId,
    body: Buffer.from(`{"to":"bob-${delegation.id}@example.test"}`),
  });
  return created.approval.id;
}

describeSessionForm('approval decision', async () => {
  const id = await pendingApproval(world);
  const status = async () => (await server.ctx.db.selectFrom('approvals').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
  return {
    pagePath: `/approvals/${id}`,
    attackerPagePath: `/approvals/${await pendingApproval(attackerWorld)}`,
    otherFormPath: '/logout',
    action: `/approvals/${id}/approve`,
    fields: {},
    target: status,
    async assertAccepted(response) {
      assert.equal(response.status, 303);
      assert.equal(response.headers.get('location'), `/approvals/${id}`);
      assert.equal(await status(), 'approved');
    },
  };
});

describe('session forms without a session', () => {
  test('signed-out posts change nothing', async () => {
    // A browser that is not signed in, with the sign-in page's token and matching `_csrf` cookie.
    const visitor: Jar = new Map();
    const token = await signInPageToken(visitor);
    const delegation = await createDelegation(server.ctx, { userId: world.user.id, clientId: world.agentId, resourceId: world.resourceId, scope: ['read'], source: 'consent' });
    const cibaId = await cibaRequest(world);
    const approvalId = await pendingApproval(world);
    const rowsBefore = await countRows();

    // The consent form sends the client login_required, as the person is no longer signed in.
    const consent = await postForm('/authorize/consent', visitor, { ...consentParameters(world), decision: 'allow' }, token);
    assert.equal(consent.status, 303);
    const location = new URL(consent.headers.get('location') ?? '');
    assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
    assert.equal(location.searchParams.get('error'), 'login_required');

    // Without a session there is nothing to sign out of.
    const signOut = await postForm('/logout/confirm', visitor, {}, token);
    assert.equal(signOut.status, 200);
    assert.match(await signOut.text(), /You are signed out/);

    const revoke = await postForm(`/account/delegations/${delegation.id}/revoke`, visitor, {}, token);
    assert.equal(revoke.status, 303);
    assert.equal(revoke.headers.get('location'), '/login?return_to=%2Faccount%2Fdelegations');

    const ciba = await postForm(`/approvals/ciba/${cibaId}/approve`, visitor, {}, token);
    assert.equal(ciba.status, 303);
    assert.equal(ciba.headers.get('location'), `/login?return_to=${encodeURIComponent(`/approvals/ciba/${cibaId}`)}`);

    const approval = await postForm(`/approvals/${approvalId}/approve`, visitor, {}, token);
    assert.equal(approval.status, 403);

    assert.deepEqual(await countRows(), rowsBefore, 'no rows were added or removed');
    const revoked = await server.ctx.db.selectFrom('delegations').select('revoked_at').where('id', '=', delegation.id).executeTakeFirstOrThrow();
    assert.equal(revoked.revoked_at, null);
    const cibaRow = await server.ctx.db.selectFrom('ciba_requests').select('status').where('id', '=', cibaId).executeTakeFirstOrThrow();
    assert.equal(cibaRow.status, 'pending');
    const approvalRow = await server.ctx.db.selectFrom('approvals').select('status').where('id', '=', approvalId).executeTakeFirstOrThrow();
    assert.equal(approvalRow.status, 'pending');
  });
});
