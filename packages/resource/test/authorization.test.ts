import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { freePort, startTestServer } from '../../server/test/harness.ts';
import type { TestServer } from '../../server/test/harness.ts';
import { seedWorld } from '../../server/test/fixtures.ts';
import { adminApi } from '../../server/test/admin/admin-client.ts';
import type { AdminApi } from '../../server/test/admin/admin-client.ts';
import { createDelegation } from '../../server/src/oauth/delegation.ts';
import { issueAccessToken } from '../../server/src/oauth/access-token.ts';
import { evaluate, pdpClientCredentials, requireAccessToken, requireAuthorization } from '../src/index.ts';
import type { AuthorizationDecision, AuthorizedRequest, PdpCredentials, RequireAuthorizationOptions } from '../src/index.ts';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

type World = Awaited<ReturnType<typeof seedWorld>>;

/** A request whose JSON body the test server has read, as Express's body parser would. */
type ParsedRequest = AuthorizedRequest & { body?: Record<string, unknown> };

/**
 * A node:http resource server on 127.0.0.1 whose identifier is `${origin}/mail`. Each request
 * passes requireAccessToken, then requireAuthorization with the options the test gives; GET
 * maps to `mail.read` and POST to `mail.send`, whose JSON body members are the arguments.
 */
interface ResourceServer {
  server: Server;
  origin: string;
  resource: string;
  /** Options of requireAuthorization for the next requests; tests replace them. */
  authorization: RequireAuthorizationOptions;
  /** Decisions reported through onDecision. */
  decisions: AuthorizationDecision[];
  close(): Promise<void>;
}

function basic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>);
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; origin: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

describe('requireAuthorization against Mandate (AuthZEN Access Evaluation API)', () => {
  let mandate: TestServer;
  let api: AdminApi;
  let world: World;
  let rs: ResourceServer;
  let credentials: PdpCredentials;
  let tokenRequests = 0;

  /** Obtains a token for the agent on alice's behalf: her consent, then RFC 8693 token exchange at /token. */
  async function delegatedToken(scope: string): Promise<string> {
    const resourceId = world.resource.id;
    await createDelegation(mandate.ctx, { userId: world.alice.id, clientId: world.agent.client.client_id, resourceId, scope: scope.split(' '), source: 'consent' });
    const subject = await issueAccessToken(mandate.ctx, { subject: world.alice.id, clientId: world.app.client.client_id, audience: rs.resource, scope: scope.split(' '), lifetimeSeconds: 600 });
    const response = await fetch(`${mandate.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic(world.agent.client.client_id, world.agent.clientSecret ?? ''), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, subject_token: subject.token, subject_token_type: ACCESS_TOKEN_TYPE, resource: rs.resource, scope }),
    });
    const body = (await response.json()) as { access_token?: string };
    assert.equal(response.status, 200, JSON.stringify(body));
    return body.access_token ?? '';
  }

  async function setPolicy(source: string): Promise<void> {
    const response = await api.call('PUT', '/policy', { source });
    assert.equal(response.status, 200, JSON.stringify(response.json));
  }

  function callMail(token: string, body?: Record<string, unknown>): Promise<Response> {
    return fetch(`${rs.resource}/messages`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }

  before(async () => {
    mandate = await startTestServer();
    api = await adminApi(mandate);

    const decisions: AuthorizationDecision[] = [];
    const { server, origin } = await listen((req: ParsedRequest, res) => {
      void (async () => {
        req.body = await readJson(req);
        const claims = await guard(req, res);
        if (claims === undefined) {
          return;
        }
        const decision = await requireAuthorization(rs.authorization)(req, res);
        if (decision === undefined) {
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ action: req.method === 'POST' ? 'mail.send' : 'mail.read', allowed: req.authorizationDecision?.allowed }));
      })();
    });
    const resource = `${origin}/mail`;
    world = await seedWorld(mandate.ctx, { identifier: resource });
    // Policies read `to` only when mail.send declares it.
    await mandate.ctx.db.updateTable('resource_actions').set({ arguments: JSON.stringify({ to: 'String' }) }).where('resource_id', '=', world.resource.id).where('name', '=', 'mail.send').execute();

    const countingFetch: typeof fetch = (input, init) => {
      if (String(input instanceof Request ? input.url : input).endsWith('/token')) {
        tokenRequests += 1;
      }
      return fetch(input, init);
    };
    credentials = pdpClientCredentials({ issuer: mandate.issuer, clientId: world.app.client.client_id, clientSecret: world.app.clientSecret ?? '', fetch: countingFetch });

    const guard = requireAccessToken({ issuer: mandate.issuer, audience: resource });
    rs = {
      server,
      origin,
      resource,
      decisions,
      authorization: defaultOptions(resource, decisions),
      close: () => close(server),
    };
  });

  after(async () => {
    await rs.close();
    await mandate.stop();
  });

  function defaultOptions(resource: string, decisions: AuthorizationDecision[]): RequireAuthorizationOptions {
    return {
      issuer: mandate.issuer,
      audience: resource,
      credentials,
      // This server serves the resource's actions (`GET /messages`, `POST /messages`) under /mail.
      basePath: new URL(resource).pathname,
      action: (req) => (req.method === 'POST' ? 'mail.send' : 'mail.read'),
      arguments: (req) => (req as ParsedRequest).body,
      onDecision: (decision) => decisions.push(decision),
    };
  }

  it('allows a call that Mandate allows', async () => {
    await setPolicy('');
    rs.authorization = defaultOptions(rs.resource, rs.decisions);
    const token = await delegatedToken('mail.read');
    const before = tokenRequests;

    const first = await callMail(token);
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), { action: 'mail.read', allowed: true });
    const second = await callMail(token);
    assert.equal(second.status, 200);
    assert.ok(tokenRequests - before <= 1, 'the PEP token is cached between calls');
    assert.equal(rs.decisions.at(-1)?.context.person, world.alice.id);
  });

  it('sends insufficient_scope for an action the token lacks', async () => {
    await setPolicy('');
    const token = await delegatedToken('mail.read');

    const response = await callMail(token, { to: 'bob@example.com' });
    assert.equal(response.status, 403);
    // RFC 6750 §3.1: the challenge names the scope the call needs.
    assert.equal(
      response.headers.get('www-authenticate'),
      `Bearer realm="${rs.resource}", error="insufficient_scope", error_description="The action mail.send is not allowed: the access token does not carry this scope.", scope="mail.send"`,
    );
    assert.deepEqual(await response.json(), { error: 'insufficient_scope', error_description: 'The action mail.send is not allowed: the access token does not carry this scope.' });
  });

  it('applies a Cedar condition on the arguments', async () => {
    const token = await delegatedToken('mail.read mail.send');
    await setPolicy('@id("company-mail") forbid(principal, action == Action::"mail/mail.send", resource) unless { context.arguments has to && context.arguments.to like "*@example.com" };');

    const inside = await callMail(token, { to: 'bob@example.com', subject: 'hi' });
    assert.equal(inside.status, 200);

    const outside = await callMail(token, { to: 'eve@evil.test' });
    assert.equal(outside.status, 403);
    const body = (await outside.json()) as { error: string; error_description: string };
    assert.equal(body.error, 'access_denied');
    assert.equal(body.error_description, 'A policy forbids this call of mail.send; the audit log names the policy.');
    assert.deepEqual(rs.decisions.at(-1)?.context.policies, ['company-mail']);
  });

  it('sends approval_required with the approval request', async () => {
    const token = await delegatedToken('mail.read mail.send');
    await setPolicy('@id("mail-needs-approval") @approval forbid(principal, action == Action::"mail/mail.send", resource);');

    const response = await callMail(token, { to: 'bob@example.com' });
    assert.equal(response.status, 403);
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(body.error, 'approval_required');
    assert.deepEqual(body.authorization_details, [{ type: 'mandate_action', resource: rs.resource, action: 'mail.send', arguments: { to: 'bob@example.com' } }]);
    assert.equal(body.backchannel_authentication_endpoint, `${mandate.issuer}/bc-authorize`);
    await setPolicy('');
  });

  it('sends invalid_token once the delegation is revoked', async () => {
    await setPolicy('');
    const token = await delegatedToken('mail.read');
    assert.equal((await callMail(token)).status, 200);

    const revoked = await api.call('POST', `/agents/${world.agent.client.client_id}/revoke-delegations`, {});
    assert.equal(revoked.status, 200);
    // The token still verifies locally, but Mandate has recorded the revocation (RFC 6750 §3.1).
    const response = await callMail(token);
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+", error="invalid_token", error_description="The delegation behind this access token was revoked\."/);
  });

  describe('fails closed', () => {
    let token: string;

    before(async () => {
      await setPolicy('');
      token = await delegatedToken('mail.read');
    });

    async function expectDenied(options: Partial<RequireAuthorizationOptions>, cause: RegExp): Promise<void> {
      rs.authorization = { ...defaultOptions(rs.resource, rs.decisions), ...options };
      try {
        const response = await callMail(token);
        assert.equal(response.status, 403);
        const body = (await response.json()) as { error: string; error_description: string };
        assert.equal(body.error, 'access_denied');
        assert.equal(body.error_description, 'Mandate could not be asked whether this call is allowed, so it is denied.');
        const decision = rs.decisions.at(-1);
        assert.equal(decision?.deniedBy, 'decision_unavailable');
        assert.match(String(decision?.error?.message), cause);
      } finally {
        rs.authorization = defaultOptions(rs.resource, rs.decisions);
      }
    }

    it('denies when Mandate is down', async () => {
      const closedPort = await freePort();
      await expectDenied({ evaluationEndpoint: `http://127.0.0.1:${closedPort}/access/v1/evaluation` }, /fetch failed/);
    });

    it('denies when the decision times out', async () => {
      const silent = await listen(() => {
        // Never responds.
      });
      try {
        const started = Date.now();
        await expectDenied({ evaluationEndpoint: `${silent.origin}/access/v1/evaluation`, timeoutMs: 300 }, /aborted|timeout/i);
        assert.ok(Date.now() - started < 2000, 'the middleware gave up at its timeout');
      } finally {
        await close(silent.server);
      }
    });

    it('denies non-200 and malformed decisions', async () => {
      const replies: Array<[string, (req: IncomingMessage, res: ServerResponse) => void, RegExp]> = [
        ['500', (_req, res) => res.writeHead(500, { 'content-type': 'application/json' }).end('{"decision":true}'), /HTTP 500/],
        ['no echo', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"decision":true}'), /X-Request-ID/],
        ['string decision', (req, res) => res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': String(req.headers['x-request-id']) }).end('{"decision":"true"}'), /no boolean "decision"/],
        ['not JSON', (req, res) => res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': String(req.headers['x-request-id']) }).end('{"decision":tr'), /JSON/],
        ['text/html', (req, res) => res.writeHead(200, { 'content-type': 'text/html', 'x-request-id': String(req.headers['x-request-id']) }).end('{"decision":true}'), /content type text\/html/],
        ['true with approval', (req, res) => res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': String(req.headers['x-request-id']) }).end('{"decision":true,"context":{"result":"approval_required"}}'), /context has the result approval_required/],
      ];
      for (const [label, reply, cause] of replies) {
        const stub = await listen(reply);
        try {
          await expectDenied({ evaluationEndpoint: `${stub.origin}/access/v1/evaluation` }, cause);
        } catch (error) {
          assert.fail(`${label}: ${(error as Error).message}`);
        } finally {
          await close(stub.server);
        }
      }
    });

    it('denies when the PEP credentials fail', async () => {
      const wrong = pdpClientCredentials({ issuer: mandate.issuer, clientId: world.app.client.client_id, clientSecret: 'not-the-secret' });
      await expectDenied({ credentials: wrong }, /token request .* failed with HTTP 401: invalid_client/);
    });

    it('denies without requireAccessToken', async () => {
      const middleware = requireAuthorization(defaultOptions(rs.resource, rs.decisions));
      const bare = await listen((req, res) => {
        void middleware(req, res);
      });
      try {
        const response = await fetch(`${bare.origin}/messages`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(response.status, 403);
        assert.match(String(rs.decisions.at(-1)?.error?.message), /runs only after requireAccessToken/);
      } finally {
        await close(bare.server);
      }
    });
  });

  describe('evaluate', () => {
    it('decides one MCP tool call', async () => {
      await setPolicy('');
      const token = await delegatedToken('mail.read');
      const options = { issuer: mandate.issuer, audience: rs.resource, credentials };

      const allowed = await evaluate(options, { token, action: 'mail.read' });
      assert.equal(allowed.allowed, true);
      assert.equal(allowed.result, 'allow');
      assert.equal(allowed.context.agent, world.agent.client.client_id);

      const denied = await evaluate(options, { token, action: 'mail.send', arguments: { to: 'bob@example.com' } });
      assert.equal(denied.allowed, false);
      assert.equal(denied.deniedBy, 'token_scope');
      assert.equal(denied.error, undefined, 'a decision from Mandate carries no error');

      const unknown = await evaluate(options, { token: 'not-a-token', action: 'mail.read' });
      assert.equal(unknown.allowed, false);
      assert.equal(unknown.deniedBy, 'token_invalid');
    });

    it('never throws', async () => {
      const options = { issuer: mandate.issuer, audience: rs.resource, credentials: () => { throw new Error('no credentials configured'); } };
      const decision = await evaluate(options, { token: 'x', action: 'mail.read' });
      assert.equal(decision.allowed, false);
      assert.match(String(decision.error?.message), /no credentials configured/);

      const insecure = await evaluate({ ...options, credentials, issuer: 'http://mandate.example.com' }, { token: 'x', action: 'mail.read' });
      assert.equal(insecure.allowed, false, 'a plain-http PDP outside loopback is refused');
      assert.match(String(insecure.error?.message), /must use https/);
    });
  });
});
