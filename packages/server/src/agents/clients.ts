import { timingSafeEqual } from 'node:crypto';
import type { JSONWebKeySet } from 'jose';
import type { ServerContext } from '../context.ts';
import { newId, newSecret, nowSeconds, sha256Hex } from '../store/ids.ts';
import type { ClientTable } from '../store/schema.ts';

export type Client = ClientTable;

export interface NewClient {
  kind: ClientTable['kind'];
  name: string;
  ownerUserId?: string | undefined;
  /** Public JWK Set for private_key_jwt; without it the client gets a generated secret. */
  jwks?: JSONWebKeySet | undefined;
  redirectUris?: string[] | undefined;
  /** Exact URIs the logout endpoint may redirect to (OpenID Connect RP-Initiated Logout 1.0 §3.1). */
  postLogoutRedirectUris?: string[] | undefined;
  /** Refuses token requests without a DPoP proof (RFC 9449 §5). */
  requireDpop?: boolean | undefined;
  /** A public client (RFC 6749 §2.1): no secret and no keys. Only self-registered clients are public. */
  publicClient?: boolean | undefined;
  /** The client_id, when the caller must know it first; otherwise one is generated. */
  clientId?: string | undefined;
  /** Set for self-registered clients, with the time a metadata document's contents go stale. */
  registration?: { origin: 'dynamic' } | { origin: 'metadata_document'; expiresAt: number } | undefined;
  /** The grant types a self-registered client registered; absent allows every grant of its kind. */
  grantTypes?: string[] | undefined;
  /** CIBA Core 1.0 §4: the agent's token delivery mode, with the notification endpoint in ping mode; absent means poll. */
  backchannel?: { deliveryMode: 'poll' | 'ping'; notificationEndpoint?: string | undefined } | undefined;
}

export interface CreatedClient {
  client: Client;
  /** The generated secret, returned once and stored only as a SHA-256 digest. */
  clientSecret?: string | undefined;
}

const ID_PREFIX: Record<ClientTable['kind'], string> = { agent: 'agt', application: 'app', admin: 'adm', registered: 'reg' };

function authenticationMethod(hasKeys: boolean, hasSecret: boolean): ClientTable['token_endpoint_auth_method'] {
  if (hasKeys) return 'private_key_jwt';
  if (hasSecret) return 'client_secret_basic';
  return 'none';
}

export function newClientId(kind: ClientTable['kind']): string {
  return newId(ID_PREFIX[kind]);
}

/** Registers an OAuth client: an agent, an application that signs people in, or an admin client. */
export async function createClient(ctx: Pick<ServerContext, 'db' | 'tenantId'>, input: NewClient): Promise<CreatedClient> {
  const clientSecret = input.jwks === undefined && input.publicClient !== true ? newSecret() : undefined;
  const registration = input.registration;
  const client: Client = {
    client_id: input.clientId ?? newClientId(input.kind),
    tenant_id: ctx.tenantId,
    kind: input.kind,
    name: input.name,
    owner_user_id: input.ownerUserId ?? null,
    token_endpoint_auth_method: authenticationMethod(input.jwks !== undefined, clientSecret !== undefined),
    secret_digest: clientSecret === undefined ? null : sha256Hex(clientSecret),
    jwks: input.jwks === undefined ? null : JSON.stringify(input.jwks),
    redirect_uris: JSON.stringify(input.redirectUris ?? []),
    post_logout_redirect_uris: input.postLogoutRedirectUris === undefined ? null : JSON.stringify(input.postLogoutRedirectUris),
    status: 'active',
    created_at: nowSeconds(),
    require_dpop: input.requireDpop === true ? 1 : 0,
    registration: registration?.origin ?? null,
    metadata_expires_at: registration?.origin === 'metadata_document' ? registration.expiresAt : null,
    grant_types: input.grantTypes === undefined ? null : JSON.stringify(input.grantTypes),
    backchannel_token_delivery_mode: input.backchannel?.deliveryMode ?? null,
    backchannel_client_notification_endpoint: input.backchannel?.notificationEndpoint ?? null,
  };
  await ctx.db.insertInto('clients').values(client).execute();
  return { client, clientSecret };
}

export async function findClient(ctx: Pick<ServerContext, 'db' | 'tenantId'>, clientId: string): Promise<Client | undefined> {
  return ctx.db.selectFrom('clients').selectAll().where('tenant_id', '=', ctx.tenantId).where('client_id', '=', clientId).executeTakeFirst();
}

/** Compares a presented secret with the stored digest in constant time. */
export function secretMatches(client: Client, presented: string): boolean {
  if (client.secret_digest === null) return false;
  const expected = Buffer.from(client.secret_digest, 'hex');
  const actual = Buffer.from(sha256Hex(presented), 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Checks that the client registered this grant type. Clients an administrator created may use every grant of their kind. */
export function clientRegisteredGrant(client: Client, grantType: string): boolean {
  if (client.grant_types === null || client.grant_types === undefined) return true;
  return (JSON.parse(client.grant_types) as string[]).includes(grantType);
}

export function redirectUrisOf(client: Client): string[] {
  return JSON.parse(client.redirect_uris) as string[];
}

export function postLogoutRedirectUrisOf(client: Client): string[] {
  return JSON.parse(client.post_logout_redirect_uris ?? '[]') as string[];
}

/** Lists the tenant's clients of one kind, oldest first. */
export async function listClients(ctx: Pick<ServerContext, 'db' | 'tenantId'>, kind: ClientTable['kind']): Promise<Client[]> {
  return ctx.db.selectFrom('clients').selectAll().where('tenant_id', '=', ctx.tenantId).where('kind', '=', kind).orderBy('created_at').orderBy('name').execute();
}

/** Returns which of the client ids are active agents. An empty list needs no query. */
export async function activeAgentIds(ctx: Pick<ServerContext, 'db' | 'tenantId'>, clientIds: readonly string[]): Promise<Set<string>> {
  if (clientIds.length === 0) return new Set();
  const rows = await ctx.db.selectFrom('clients').select('client_id').where('tenant_id', '=', ctx.tenantId).where('client_id', 'in', [...clientIds]).where('status', '=', 'active').where('kind', '=', 'agent').execute();
  return new Set(rows.map((row) => row.client_id));
}

/** Marks a client disabled so that it can no longer authenticate. Returns false for an unknown client_id. */
export async function disableClient(ctx: Pick<ServerContext, 'db' | 'tenantId'>, clientId: string): Promise<boolean> {
  const updated = await ctx.db.updateTable('clients').set({ status: 'disabled' }).where('tenant_id', '=', ctx.tenantId).where('client_id', '=', clientId).executeTakeFirst();
  return Number(updated.numUpdatedRows) > 0;
}

/** Assigns a role to a client (an agent); assigning a role it already has changes nothing. */
export async function addClientRole(ctx: Pick<ServerContext, 'db'>, clientId: string, roleId: string): Promise<void> {
  await ctx.db.insertInto('client_roles').values({ client_id: clientId, role_id: roleId }).onConflict((oc) => oc.columns(['client_id', 'role_id']).doNothing()).execute();
}

/** Removes a role from a client; returns false when the client did not have it. */
export async function removeClientRole(ctx: Pick<ServerContext, 'db'>, clientId: string, roleId: string): Promise<boolean> {
  const deleted = await ctx.db.deleteFrom('client_roles').where('client_id', '=', clientId).where('role_id', '=', roleId).executeTakeFirst();
  return Number(deleted.numDeletedRows) > 0;
}

/** Returns the role names of each given client, sorted. */
export async function clientRoleNames(ctx: Pick<ServerContext, 'db' | 'tenantId'>, clientIds: string[]): Promise<Map<string, string[]>> {
  const names = new Map<string, string[]>(clientIds.map((id) => [id, []]));
  if (clientIds.length === 0) return names;

  const rows = await ctx.db
    .selectFrom('client_roles')
    .innerJoin('roles', 'roles.id', 'client_roles.role_id')
    .select(['client_roles.client_id', 'roles.name'])
    .where('roles.tenant_id', '=', ctx.tenantId)
    .where('client_roles.client_id', 'in', clientIds)
    .orderBy('roles.name')
    .execute();
  for (const row of rows) names.get(row.client_id)?.push(row.name);
  return names;
}
