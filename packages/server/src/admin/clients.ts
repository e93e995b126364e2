import { z } from 'zod';
import type { JSONWebKeySet } from 'jose';
import type { ServerContext } from '../context.ts';
import { notFound, Problem } from '../http/problem.ts';
import { addClientRole, clientRoleNames, createClient, disableClient, listClients, postLogoutRedirectUrisOf, redirectUrisOf, removeClientRole, type Client, type NewClient } from '../agents/clients.ts';
import { BACKCHANNEL_DELIVERY_MODES, isLoopbackHttpEndpoint, notificationEndpointProblem } from '../oauth/ciba/delivery-mode.ts';
import type { ClientTable } from '../store/schema.ts';
import { auditedTransaction } from './audited-transaction.ts';
import { rejectDuplicates } from './constraint-errors.ts';
import { parseInput } from './input.ts';
import { redirectUriProblem } from '../oauth/redirect-uri.ts';
import { publicJwkSet } from '../agents/public-jwks.ts';
import { requireClient, requireRole, requireRoles, requireUser } from './references.ts';
import { roleName } from './users.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

/** The kinds of client the admin API registers; admin clients come only from `mandate init`. */
export type ManagedKind = Extract<ClientTable['kind'], 'agent' | 'application'>;

const redirectUri = z
  .string()
  .max(2000)
  .superRefine((value, check) => {
    const reason = redirectUriProblem(value);
    if (reason !== undefined) check.addIssue({ code: 'custom', message: reason });
  });

function createClientBody(kind: ManagedKind) {
  const uris = z.array(redirectUri).max(20);
  return z
    .strictObject({
      name: z.string().trim().min(1).max(100).describe('Display name, unique in the tenant'),
      owner: z.string().min(1).max(100).optional().describe('Owning user: id or username'),
      jwks: publicJwkSet.optional(),
      redirect_uris: (kind === 'application' ? uris.min(1, 'an application needs at least one redirect URI') : uris.optional()).describe(
        'Exact redirect URIs for the authorization code flow',
      ),
      post_logout_redirect_uris: uris.optional().describe('Exact URIs the logout endpoint may send the browser back to after sign-out (OpenID Connect RP-Initiated Logout 1.0)'),
      roles: z.array(roleName).max(100).optional().describe('Names of roles to assign'),
      require_dpop: z.boolean().default(false).describe('Refuse token requests without a DPoP proof (RFC 9449), so every token is sender-constrained'),
    })
    .describe(kind === 'agent' ? 'A new agent (an OAuth client of kind agent)' : 'A new application that signs people in');
}

/** An agent's CIBA registration (CIBA Core 1.0 §4). */
const backchannelFields = {
  backchannel_token_delivery_mode: z.enum(BACKCHANNEL_DELIVERY_MODES, 'must be poll or ping').optional().describe('How the agent learns that a person decided its CIBA request: poll (the default) or ping'),
  backchannel_client_notification_endpoint: z
    .string()
    .max(2000)
    .superRefine((value, check) => {
      const reason = notificationEndpointProblem(value);
      if (reason !== undefined) check.addIssue({ code: 'custom', message: reason });
    })
    .optional()
    .describe('https URL that receives ping notifications (CIBA Core 1.0 §10.2); required in ping mode and only there'),
};

/** CIBA Core 1.0 §4: a notification endpoint belongs to ping mode, and ping mode needs one. */
function checkBackchannelFields(body: { backchannel_token_delivery_mode?: string | undefined; backchannel_client_notification_endpoint?: string | undefined }, check: z.RefinementCtx): void {
  const ping = body.backchannel_token_delivery_mode === 'ping';
  const endpoint = body.backchannel_client_notification_endpoint !== undefined;
  if (ping && !endpoint) check.addIssue({ code: 'custom', path: ['backchannel_client_notification_endpoint'], message: 'is required when backchannel_token_delivery_mode is ping' });
  if (!ping && endpoint) check.addIssue({ code: 'custom', path: ['backchannel_client_notification_endpoint'], message: 'is used only in ping mode; set backchannel_token_delivery_mode to ping or leave it out' });
}

export const createAgentBody = createClientBody('agent').extend(backchannelFields).superRefine(checkBackchannelFields).describe('A new agent (an OAuth client of kind agent)');
export const createApplicationBody = createClientBody('application');

/** A client as the admin API and the CLI show it: never the secret or its digest. */
export interface ClientView {
  client_id: string;
  kind: ClientTable['kind'];
  name: string;
  owner_user_id: string | null;
  token_endpoint_auth_method: ClientTable['token_endpoint_auth_method'];
  jwks: JSONWebKeySet | null;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  require_dpop: boolean;
  /** Origin of a self-registered client (`dynamic` or `metadata_document`), or null when an administrator created it. */
  registration: ClientTable['registration'];
  /** Agents only: CIBA token delivery mode (CIBA Core 1.0 §4). */
  backchannel_token_delivery_mode?: 'poll' | 'ping';
  /** Agents in ping mode only: where Mandate sends ping notifications. */
  backchannel_client_notification_endpoint?: string;
  status: ClientTable['status'];
  created_at: number;
  roles: string[];
}

export interface CreatedClientView extends ClientView {
  /** Present once, in the create response of a client_secret_basic client. */
  client_secret?: string;
}

/** Registers an agent or application with its roles, atomically; a generated secret is returned once. */
export async function createClientRecord(ctx: Ctx & Pick<ServerContext, 'config'>, kind: ManagedKind, input: unknown, actor: string): Promise<CreatedClientView> {
  const agentBody = kind === 'agent' ? parseInput(createAgentBody, input) : undefined;
  const body = agentBody ?? parseInput(createApplicationBody, input);
  const backchannel = agentBody === undefined ? undefined : backchannelRegistration(ctx, agentBody);
  const owner = body.owner === undefined ? undefined : await requireUser(ctx, body.owner, { field: 'owner' });
  const roles = await requireRoles(ctx, body.roles, 'roles');

  return rejectDuplicates(`A client named ${body.name} already exists.`, () =>
    auditedTransaction(ctx, async (trx) => {
      const scoped = { db: trx, tenantId: ctx.tenantId };
      const { client, clientSecret } = await createClient(scoped, { kind, name: body.name, ownerUserId: owner?.id, jwks: body.jwks as JSONWebKeySet | undefined, redirectUris: body.redirect_uris, postLogoutRedirectUris: body.post_logout_redirect_uris, requireDpop: body.require_dpop, backchannel });
      for (const role of roles) await addClientRole(scoped, client.client_id, role.id);

      const view: CreatedClientView = clientView(client, roles.map((role) => role.name).sort());
      if (clientSecret !== undefined) view.client_secret = clientSecret;
      const event = { event: 'client.created', actor, agent: client.client_id, target: { kind, name: client.name, owner: client.owner_user_id, auth_method: client.token_endpoint_auth_method, roles: view.roles }, outcome: { result: 'created' } };
      return { result: view, events: [event] };
    }),
  );
}

export async function listClientRecords(ctx: Ctx, kind: ClientTable['kind']): Promise<ClientView[]> {
  const clients = await listClients(ctx, kind);
  const roles = await clientRoleNames(
    ctx,
    clients.map((client) => client.client_id),
  );
  return clients.map((client) => clientView(client, roles.get(client.client_id) ?? []));
}

/** Assigns a role to an agent; assigning it twice changes nothing. */
export async function grantClientRole(ctx: Ctx, kind: ManagedKind, clientId: string, input: unknown, actor: string): Promise<ClientView> {
  const body = parseInput(
    z.strictObject({ role: roleName }),
    input,
  );
  const client = await requireClient(ctx, clientId, kind, { path: true });
  const role = await requireRole(ctx, body.role, { field: 'role' });

  await auditedTransaction(ctx, async (trx) => {
    await addClientRole({ db: trx }, client.client_id, role.id);
    return { result: undefined, events: [{ event: 'client.role_granted', actor, agent: client.client_id, target: { role: role.name }, outcome: { result: 'granted' } }] };
  });
  return viewOf(ctx, client);
}

/** Removes a role from an agent; 404 when the agent does not have it. */
export async function revokeClientRole(ctx: Ctx, kind: ManagedKind, clientId: string, roleReference: string, actor: string): Promise<ClientView> {
  const client = await requireClient(ctx, clientId, kind, { path: true });
  const role = await requireRole(ctx, roleReference, { path: true });

  await auditedTransaction(ctx, async (trx) => {
    const removed = await removeClientRole({ db: trx }, client.client_id, role.id);
    if (!removed) throw notFound(`Role ${role.name} of ${client.client_id}`);
    return { result: undefined, events: [{ event: 'client.role_removed', actor, agent: client.client_id, target: { role: role.name }, outcome: { result: 'removed' } }] };
  });
  return viewOf(ctx, client);
}

/** Disables an agent or application so it can no longer authenticate; its delegations stay until revoked. */
export async function disableClientRecord(ctx: Ctx, kind: ManagedKind, clientId: string, actor: string): Promise<ClientView> {
  const client = await requireClient(ctx, clientId, kind, { path: true });

  await auditedTransaction(ctx, async (trx) => {
    await disableClient({ db: trx, tenantId: ctx.tenantId }, client.client_id);
    return { result: undefined, events: [{ event: 'client.disabled', actor, agent: client.client_id, target: { kind }, outcome: { result: 'disabled' } }] };
  });
  return viewOf(ctx, { ...client, status: 'disabled' });
}

/**
 * Reads an agent's CIBA registration from a validated body. A plain-http loopback endpoint is
 * accepted only where the server would also call it, with `allowLoopbackUpstreams`.
 */
function backchannelRegistration(ctx: Pick<ServerContext, 'config'>, body: { backchannel_token_delivery_mode?: 'poll' | 'ping' | undefined; backchannel_client_notification_endpoint?: string | undefined }): NewClient['backchannel'] {
  const endpoint = body.backchannel_client_notification_endpoint;
  if (endpoint !== undefined && isLoopbackHttpEndpoint(endpoint) && !ctx.config.allowLoopbackUpstreams) {
    const reason = 'must use https; http on loopback needs the allowLoopbackUpstreams setting, which is for tests only';
    throw new Problem(400, 'Bad Request', `Invalid input. backchannel_client_notification_endpoint: ${reason}.`, { type: 'urn:mandate:problem:invalid-input', extra: { 'invalid-params': [{ name: 'backchannel_client_notification_endpoint', reason }] } });
  }
  const deliveryMode = body.backchannel_token_delivery_mode;
  return deliveryMode === undefined ? undefined : { deliveryMode, notificationEndpoint: endpoint };
}

export function clientView(client: Client, roles: string[]): ClientView {
  return {
    client_id: client.client_id,
    kind: client.kind,
    name: client.name,
    owner_user_id: client.owner_user_id,
    token_endpoint_auth_method: client.token_endpoint_auth_method,
    jwks: client.jwks === null ? null : (JSON.parse(client.jwks) as JSONWebKeySet),
    redirect_uris: redirectUrisOf(client),
    post_logout_redirect_uris: postLogoutRedirectUrisOf(client),
    require_dpop: client.require_dpop === 1,
    registration: client.registration ?? null,
    ...(client.kind === 'agent' ? { backchannel_token_delivery_mode: client.backchannel_token_delivery_mode ?? 'poll' } : {}),
    ...(typeof client.backchannel_client_notification_endpoint === 'string' ? { backchannel_client_notification_endpoint: client.backchannel_client_notification_endpoint } : {}),
    status: client.status,
    created_at: Number(client.created_at),
    roles,
  };
}

async function viewOf(ctx: Ctx, client: Client): Promise<ClientView> {
  const roles = await clientRoleNames(ctx, [client.client_id]);
  return clientView(client, roles.get(client.client_id) ?? []);
}
