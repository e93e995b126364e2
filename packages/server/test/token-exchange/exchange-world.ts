import * as oidc from 'openid-client';
import { createClient } from '../../src/agents/clients.ts';
import { createUser, type User } from '../../src/identity/users.ts';
import { issueIdToken } from '../../src/oauth/id-token.ts';
import { issueAccessToken } from '../../src/oauth/access-token.ts';
import { createDelegation } from '../../src/oauth/delegation.ts';
import { issueRefreshToken } from '../../src/oauth/refresh-token.ts';
import { nowSeconds } from '../../src/store/ids.ts';
import type { TestServer } from '../harness.ts';
import { PASSWORD, createResource, createRole } from '../fixtures.ts';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TYPE = {
  access_token: 'urn:ietf:params:oauth:token-type:access_token',
  refresh_token: 'urn:ietf:params:oauth:token-type:refresh_token',
  id_token: 'urn:ietf:params:oauth:token-type:id_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
} as const;

export interface Agent {
  clientId: string;
  secret: string;
}

/**
 * Records for token exchange tests: person alice with every action of the notes resource,
 * agents with different roles on it, a second resource, and alice's portal application.
 */
export interface ExchangeWorld {
  alice: User;
  notes: { id: string; identifier: string };
  calendar: { id: string; identifier: string };
  /** Roles: read, write and delete on notes. */
  assistant: Agent;
  /** Roles: read on notes only. */
  helper: Agent;
  /** Roles: read on notes. */
  third: Agent;
  /** Roles: read on notes. */
  fourth: Agent;
  /** Roles: read on notes; alice never delegates to it. */
  stranger: Agent;
  portal: Agent;
}

export async function createExchangeWorld(server: TestServer): Promise<ExchangeWorld> {
  const ctx = server.ctx;
  const notes = await createResource(ctx, { name: 'notes', identifier: 'https://api.example.test/notes', actions: [{ name: 'notes.read' }, { name: 'notes.write' }, { name: 'notes.delete' }] });
  const calendar = await createResource(ctx, { name: 'calendar', identifier: 'https://api.example.test/calendar', actions: [{ name: 'calendar.read' }] });
  const everything = await createRole(ctx, 'notes-all', [[notes.identifier, '*'], [calendar.identifier, '*']]);
  const reader = await createRole(ctx, 'notes-reader', [[notes.identifier, 'notes.read']]);

  const alice = await createUser(ctx, { username: 'alice', password: PASSWORD, displayName: 'Alice Example' });
  await ctx.db.insertInto('user_roles').values({ user_id: alice.id, role_id: everything }).execute();

  const agent = async (name: string, role: string): Promise<Agent> => {
    const created = await createClient(ctx, { kind: 'agent', name });
    await ctx.db.insertInto('client_roles').values({ client_id: created.client.client_id, role_id: role }).execute();
    return { clientId: created.client.client_id, secret: created.clientSecret ?? '' };
  };
  const portal = await createClient(ctx, { kind: 'application', name: 'Alice portal', redirectUris: ['http://127.0.0.1:9/callback'] });

  return {
    alice,
    notes,
    calendar,
    assistant: await agent('Notes assistant', everything),
    helper: await agent('Notes helper', reader),
    third: await agent('Third agent', reader),
    fourth: await agent('Fourth agent', reader),
    stranger: await agent('Stranger agent', reader),
    portal: { clientId: portal.client.client_id, secret: portal.clientSecret ?? '' },
  };
}

/** Records alice's consent to an agent, as the consent page does, and returns the delegation id. */
export async function consent(server: TestServer, world: ExchangeWorld, agent: Agent, scope: string, resourceId = world.notes.id): Promise<string> {
  const delegation = await createDelegation(server.ctx, { userId: world.alice.id, clientId: agent.clientId, resourceId, scope: scope.split(' '), source: 'consent' });
  return delegation.id;
}

/** Alice's own access token as her portal holds it (no actor). */
export async function personToken(server: TestServer, world: ExchangeWorld, options: { scope?: string; lifetimeSeconds?: number; mayAct?: string; audience?: string; dpopJkt?: string } = {}): Promise<string> {
  const issued = await issueAccessToken(server.ctx, {
    subject: world.alice.id,
    clientId: world.portal.clientId,
    audience: options.audience ?? world.notes.identifier,
    scope: (options.scope ?? 'notes.read notes.write notes.delete').split(' '),
    lifetimeSeconds: options.lifetimeSeconds ?? 600,
    mayAct: options.mayAct,
    dpopJkt: options.dpopJkt,
  });
  return issued.token;
}

/** An ID token for alice, issued to `clientId` as the authorization code grant does. */
export async function idToken(server: TestServer, world: ExchangeWorld, clientId: string): Promise<string> {
  return issueIdToken(server.ctx, { user: world.alice, clientId, nonce: null, authTime: nowSeconds() });
}

/**
 * Issues a refresh token of `agent` under a delegation of alice, as the authorization code
 * grant does. It is bound to the DPoP key with thumbprint `dpopJkt` when one is given.
 */
export async function refreshToken(server: TestServer, world: ExchangeWorld, agent: Agent, delegationId: string, scope: string, dpopJkt?: string): Promise<string> {
  return issueRefreshToken(server.ctx, { clientId: agent.clientId, userId: world.alice.id, delegationId, resourceId: world.notes.id, scope: scope.split(' '), dpopJkt });
}

function basic(agent: Agent): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(agent.clientId)}:${encodeURIComponent(agent.secret)}`).toString('base64')}`;
}

/** Posts to the real token endpoint as `agent`, with extra headers such as `dpop`, and returns the status and JSON body. */
export async function postToken(server: TestServer, agent: Agent, body: Array<[string, string]>, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic(agent), 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Posts a token exchange with the subject token, the extra parameters and the extra headers. */
export async function exchange(server: TestServer, agent: Agent, subjectToken: string, extra: Array<[string, string]> = [], subjectType: string = TYPE.access_token, headers: Record<string, string> = {}) {
  return postToken(server, agent, [['grant_type', TOKEN_EXCHANGE], ['subject_token', subjectToken], ['subject_token_type', subjectType], ...extra], headers);
}

/** The agent's own token from client_credentials: its `sub` is the agent, and it has no `act`. */
export async function agentToken(server: TestServer, world: ExchangeWorld, agent: Agent): Promise<string> {
  const result = await postToken(server, agent, [['grant_type', 'client_credentials'], ['resource', world.notes.identifier], ['scope', 'notes.read']]);
  if (result.status !== 200) throw new Error(`client_credentials failed: ${result.status} ${JSON.stringify(result.body)}`);
  return String(result.body.access_token);
}

/** Discovers the server with openid-client as `agent`, authenticating with client_secret_basic. */
export async function clientConfig(server: TestServer, agent: Agent): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(server.issuer), agent.clientId, {}, oidc.ClientSecretBasic(agent.secret), { execute: [oidc.allowInsecureRequests] });
}
