import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient } from '../../src/agents/clients.ts';
import { createUser, type User } from '../../src/identity/users.ts';
import { issueAccessToken } from '../../src/oauth/access-token.ts';
import { createDelegation } from '../../src/oauth/delegation.ts';
import { newId, nowSeconds } from '../../src/store/ids.ts';
import { saveConnection } from '../../src/vault/connections.ts';
import type { TestServer } from '../harness.ts';

export const UPSTREAM_CREDENTIAL = 'upstream-key-Zq8Vw3Lr6Tn1Xy4Bp0Hs';
export const PASSWORD = 'correct horse battery staple';
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** A request as the upstream received it. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A real HTTP upstream on loopback. It rejects calls without the expected credential,
 * records every call, and on `/api/echo…` sends back the request (credential included)
 * in its body and fields, so tests can check that the gateway redacts it.
 */
export interface Upstream {
  url: string;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

export async function startUpstream(credentialField = 'authorization', expected = `Bearer ${UPSTREAM_CREDENTIAL}`): Promise<Upstream> {
  const received: ReceivedRequest[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body });

      if (request.headers[credentialField] !== expected) {
        response.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'upstream saw no valid credential' }));
        return;
      }
      if ((request.url ?? '').startsWith('/api/echo')) {
        response.writeHead(200, {
          'content-type': 'application/json',
          'set-cookie': 'upstream_session=abc; Path=/',
          'x-echo-credential': String(request.headers[credentialField]),
          'www-authenticate': `Bearer realm="upstream", hint="${UPSTREAM_CREDENTIAL}"`,
        });
        response.end(JSON.stringify({ method: request.method, url: request.url, headers: request.headers, body: body.toString('utf8'), raw: UPSTREAM_CREDENTIAL, encoded: encodeURIComponent(UPSTREAM_CREDENTIAL) }));
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' }).end(JSON.stringify({ ok: true, method: request.method, url: request.url }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The records one gateway test needs: a person, an agent, a resource with actions, roles and a stored credential. */
export interface World {
  user: User;
  agentId: string;
  agentSecret: string;
  applicationId: string;
  resourceId: string;
  resourceName: string;
  identifier: string;
  userRoleId: string;
  agentRoleId: string;
}

let counter = 0;

/**
 * Creates a person and an agent, both granted every action of a new gateway resource
 * `files-<n>` whose upstream is `<upstream>/api`. Actions: `read` (GET /items), `write`
 * (POST /items), `purge` (DELETE /items/archive, needs approval), `send` (POST /send,
 * needs approval) and `echo` (any method under /echo).
 */
export async function createWorld(server: TestServer, upstreamUrl: string, options: { upstreamAuth?: string; storeCredential?: boolean } = {}): Promise<World> {
  const ctx = server.ctx;
  counter += 1;
  const suffix = `${counter}-${Math.random().toString(36).slice(2, 8)}`;
  const resourceName = `files-${suffix}`;
  const identifier = `${server.issuer}/gateway/${resourceName}`;
  const now = nowSeconds();

  const user = await createUser(ctx, { username: `alice-${suffix}`, displayName: `Alice ${suffix}`, password: PASSWORD });
  const agent = await createClient(ctx, { kind: 'agent', name: `Filing Agent ${suffix}` });
  const application = await createClient(ctx, { kind: 'application', name: `Files App ${suffix}`, redirectUris: ['http://127.0.0.1/callback'] });

  const resourceId = newId('res');
  await ctx.db
    .insertInto('resources')
    .values({ id: resourceId, tenant_id: ctx.tenantId, name: resourceName, identifier, display_name: `Files ${suffix}`, access_token_ttl_seconds: 600, upstream_base_url: `${upstreamUrl}/api`, upstream_auth: options.upstreamAuth ?? 'bearer', created_at: now })
    .execute();
  const actions = [
    { name: 'read', method: 'GET', path_prefix: '/items', requires_approval: 0, description: 'Read items' },
    { name: 'write', method: 'POST', path_prefix: '/items', requires_approval: 0, description: 'Create items' },
    { name: 'purge', method: 'DELETE', path_prefix: '/items/archive', requires_approval: 1, description: 'Delete archived items' },
    { name: 'send', method: 'POST', path_prefix: '/send', requires_approval: 1, description: 'Send a message' },
    { name: 'echo', method: '*', path_prefix: '/echo', requires_approval: 0, description: 'Echo the request' },
  ];
  await ctx.db.insertInto('resource_actions').values(actions.map((action) => ({ resource_id: resourceId, ...action }))).execute();

  const userRoleId = newId('rol');
  const agentRoleId = newId('rol');
  await ctx.db
    .insertInto('roles')
    .values([
      { id: userRoleId, tenant_id: ctx.tenantId, name: `files-user-${suffix}`, description: 'Person using files', created_at: now },
      { id: agentRoleId, tenant_id: ctx.tenantId, name: `files-agent-${suffix}`, description: 'Agent using files', created_at: now },
    ])
    .execute();
  await ctx.db
    .insertInto('role_permissions')
    .values([
      { role_id: userRoleId, resource: identifier, action: '*' },
      { role_id: agentRoleId, resource: identifier, action: '*' },
    ])
    .execute();
  await ctx.db.insertInto('user_roles').values({ user_id: user.id, role_id: userRoleId }).execute();
  await ctx.db.insertInto('client_roles').values({ client_id: agent.client.client_id, role_id: agentRoleId }).execute();

  if (options.storeCredential !== false) await saveConnection(ctx, { userId: user.id, resourceId, credential: UPSTREAM_CREDENTIAL });

  return { user, agentId: agent.client.client_id, agentSecret: agent.clientSecret ?? '', applicationId: application.client.client_id, resourceId, resourceName, identifier, userRoleId, agentRoleId };
}

function basic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/**
 * Obtains a delegated token the way an agent does: the person consents to the agent (the
 * delegation the consent page would record), then the person's own access token (issued here
 * as the person's application would obtain it) is exchanged at the real `/token` endpoint
 * with RFC 8693 token exchange.
 */
export async function delegatedToken(server: TestServer, world: World, scope = 'read write purge send echo', audience = world.identifier): Promise<string> {
  await createDelegation(server.ctx, { userId: world.user.id, clientId: world.agentId, resourceId: world.resourceId, scope: scope.split(' '), source: 'consent' });
  const subject = await issueAccessToken(server.ctx, { subject: world.user.id, clientId: world.applicationId, audience, scope: scope.split(' '), lifetimeSeconds: 600 });
  const response = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic(world.agentId, world.agentSecret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, subject_token: subject.token, subject_token_type: ACCESS_TOKEN_TYPE, resource: audience, scope }),
  });
  const body = (await response.json()) as { access_token?: string };
  if (response.status !== 200 || body.access_token === undefined) throw new Error(`token exchange failed: ${response.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/** Obtains the agent's own token with client_credentials: it names no person, so it is not delegated. */
export async function agentOwnToken(server: TestServer, world: World): Promise<string> {
  const response = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic(world.agentId, world.agentSecret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: world.identifier, scope: 'read' }),
  });
  const body = (await response.json()) as { access_token?: string };
  if (response.status !== 200 || body.access_token === undefined) throw new Error(`client_credentials failed: ${response.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/** Calls the gateway with a bearer token. */
export async function callGateway(server: TestServer, world: World, path: string, init: { method?: string; token?: string | undefined; body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  return fetch(`${server.issuer}/gateway/${world.resourceName}${path}`, { method: init.method ?? 'GET', headers, ...(init.body === undefined ? {} : { body: init.body }) });
}

/** Sends a request with the path exactly as given; fetch would resolve dot segments first. */
export async function rawGatewayRequest(server: TestServer, rawPath: string, token: string, method = 'GET', body?: Buffer): Promise<{ status: number; body: string }> {
  const url = new URL(server.issuer);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: url.hostname, port: Number(url.port), path: rawPath, method, headers: { authorization: `Bearer ${token}` } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}
