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
}

export interface CreatedClient {
  client: Client;
  /** The generated secret, returned once and stored only as a SHA-256 digest. */
  clientSecret?: string | undefined;
}

const ID_PREFIX: Record<ClientTable['kind'], string> = { agent: 'agt', application: 'app', admin: 'adm' };

/** Registers an OAuth client: an agent, an application that signs people in, or an admin client. */
export async function createClient(ctx: Pick<ServerContext, 'db' | 'tenantId'>, input: NewClient): Promise<CreatedClient> {
  const clientSecret = input.jwks === undefined ? newSecret() : undefined;
  const client: Client = {
    client_id: newId(ID_PREFIX[input.kind]),
    tenant_id: ctx.tenantId,
    kind: input.kind,
    name: input.name,
    owner_user_id: input.ownerUserId ?? null,
    token_endpoint_auth_method: input.jwks === undefined ? 'client_secret_basic' : 'private_key_jwt',
    secret_digest: clientSecret === undefined ? null : sha256Hex(clientSecret),
    jwks: input.jwks === undefined ? null : JSON.stringify(input.jwks),
    redirect_uris: JSON.stringify(input.redirectUris ?? []),
    status: 'active',
    created_at: nowSeconds(),
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

export function redirectUrisOf(client: Client): string[] {
  return JSON.parse(client.redirect_uris) as string[];
}
