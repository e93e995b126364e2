import { z } from 'zod';
import type { JSONWebKeySet } from 'jose';
import type { ServerContext } from '../context.ts';
import { notFound } from '../http/problem.ts';
import { addClientRole, clientRoleNames, createClient, disableClient, listClients, redirectUrisOf, removeClientRole, type Client } from '../agents/clients.ts';
import type { ClientTable } from '../store/schema.ts';
import { auditedTransaction } from './audited-transaction.ts';
import { rejectDuplicates } from './constraint-errors.ts';
import { parseInput } from './input.ts';
import { requireClient, requireRole, requireRoles, requireUser } from './references.ts';
import { roleName } from './users.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

/** The kinds of client the admin API registers; admin clients come only from `mandate init`. */
export type ManagedKind = Extract<ClientTable['kind'], 'agent' | 'application'>;

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const publicJwk = z
  .looseObject({
    kty: z.enum(['RSA', 'EC', 'OKP'], 'must be RSA, EC or OKP (asymmetric keys only)'),
    kid: z.string().min(1).optional(),
    use: z.literal('sig', 'must be sig when present').optional(),
  })
  .refine((jwk) => PRIVATE_JWK_MEMBERS.every((member) => !(member in jwk)), 'must be a public key: remove the private members (d, p, q, dp, dq, qi, k)');

const jwks = z
  .strictObject({ keys: z.array(publicJwk).min(1, 'must contain at least one key').max(10) })
  .describe('Public JWK Set for private_key_jwt client authentication (RFC 7523); without it a client_secret_basic secret is generated');

/**
 * RFC 9700 §2.1 and RFC 6749 §3.1.2: exact, absolute redirect URIs without a fragment; http only on
 * loopback (RFC 8252 §7.3), and other schemes only as private-use schemes with a dot (RFC 8252 §7.1).
 */
const redirectUri = z
  .string()
  .max(2000)
  .superRefine((value, check) => {
    const reason = redirectUriProblem(value);
    if (reason !== undefined) check.addIssue({ code: 'custom', message: reason });
  });

function redirectUriProblem(value: string): string | undefined {
  if (!URL.canParse(value)) return 'must be an absolute URI';

  const url = new URL(value);
  if (value.includes('#')) return 'must not contain a fragment';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname) ? undefined : 'must use https unless the host is loopback';
  }
  if (/^[a-z][a-z0-9+-]*\.[a-z0-9+.-]+:$/i.test(url.protocol)) return undefined;
  return 'must use https, http on loopback, or a private-use scheme in reverse domain form';
}

function createClientBody(kind: ManagedKind) {
  const uris = z.array(redirectUri).max(20);
  return z
    .strictObject({
      name: z.string().trim().min(1).max(100).describe('Display name, unique in the tenant'),
      owner: z.string().min(1).max(100).optional().describe('Owning user: id or username'),
      jwks: jwks.optional(),
      redirect_uris: (kind === 'application' ? uris.min(1, 'an application needs at least one redirect URI') : uris.optional()).describe(
        'Exact redirect URIs for the authorization code flow',
      ),
      roles: z.array(roleName).max(100).optional().describe('Names of roles to assign'),
      require_dpop: z.boolean().default(false).describe('Refuse token requests without a DPoP proof (RFC 9449), so every token is sender-constrained'),
    })
    .describe(kind === 'agent' ? 'A new agent (an OAuth client of kind agent)' : 'A new application that signs people in');
}

export const createAgentBody = createClientBody('agent');
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
  require_dpop: boolean;
  status: ClientTable['status'];
  created_at: number;
  roles: string[];
}

export interface CreatedClientView extends ClientView {
  /** Present once, in the create response of a client_secret_basic client. */
  client_secret?: string;
}

/** Registers an agent or application with its roles, atomically; a generated secret is returned once. */
export async function createClientRecord(ctx: Ctx, kind: ManagedKind, input: unknown, actor: string): Promise<CreatedClientView> {
  const body = parseInput(kind === 'agent' ? createAgentBody : createApplicationBody, input);
  const owner = body.owner === undefined ? undefined : await requireUser(ctx, body.owner, { field: 'owner' });
  const roles = await requireRoles(ctx, body.roles, 'roles');

  return rejectDuplicates(`A client named ${body.name} already exists.`, () =>
    auditedTransaction(ctx, async (trx) => {
      const scoped = { db: trx, tenantId: ctx.tenantId };
      const { client, clientSecret } = await createClient(scoped, { kind, name: body.name, ownerUserId: owner?.id, jwks: body.jwks as JSONWebKeySet | undefined, redirectUris: body.redirect_uris, requireDpop: body.require_dpop });
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

export function clientView(client: Client, roles: string[]): ClientView {
  return {
    client_id: client.client_id,
    kind: client.kind,
    name: client.name,
    owner_user_id: client.owner_user_id,
    token_endpoint_auth_method: client.token_endpoint_auth_method,
    jwks: client.jwks === null ? null : (JSON.parse(client.jwks) as JSONWebKeySet),
    redirect_uris: redirectUrisOf(client),
    require_dpop: client.require_dpop === 1,
    status: client.status,
    created_at: Number(client.created_at),
    roles,
  };
}

async function viewOf(ctx: Ctx, client: Client): Promise<ClientView> {
  const roles = await clientRoleNames(ctx, [client.client_id]);
  return clientView(client, roles.get(client.client_id) ?? []);
}
