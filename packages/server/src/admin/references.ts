import type { ServerContext } from '../context.ts';
import { Problem, notFound } from '../http/problem.ts';
import { findClient, type Client } from '../agents/clients.ts';
import { findUserByIdOrUsername, type User } from '../identity/users.ts';
import { findRoleByName, type Role } from '../policy/roles.ts';
import { findResourceById, findResourceByIdentifier, findResourceByName, type ResourceWithActions } from '../resources/registry.ts';
import type { ClientTable } from '../store/schema.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

/**
 * The origin of a reference: a path segment (a missing record is 404) or a field of the
 * input (a missing record makes the input invalid: 400 naming the field).
 */
export type ReferenceSource = { path: true } | { field: string };

function missing(what: string, source: ReferenceSource): Problem {
  if ('path' in source) return notFound(what);
  return new Problem(400, 'Bad Request', `Invalid input. ${source.field}: ${what} was not found.`, {
    type: 'urn:mandate:problem:invalid-input',
    extra: { 'invalid-params': [{ name: source.field, reason: `${what} was not found` }] },
  });
}

/** Resolves a user by id or username. */
export async function requireUser(ctx: Ctx, reference: string, source: ReferenceSource): Promise<User> {
  const user = await findUserByIdOrUsername(ctx, reference);
  if (user === undefined) throw missing(`User ${reference}`, source);
  return user;
}

export async function requireRole(ctx: Ctx, name: string, source: ReferenceSource): Promise<Role> {
  const role = await findRoleByName(ctx, name);
  if (role === undefined) throw missing(`Role ${name}`, source);
  return role;
}

const CLIENT_LABELS: Record<ClientTable['kind'], string> = { agent: 'Agent', application: 'Application', admin: 'Admin client', registered: 'Registered client' };

/** Resolves a client of the given kind by client_id; a client of another kind counts as missing. */
export async function requireClient(ctx: Ctx, clientId: string, kind: ClientTable['kind'], source: ReferenceSource): Promise<Client> {
  const client = await findClient(ctx, clientId);
  const label = CLIENT_LABELS[kind];
  if (client === undefined || client.kind !== kind) throw missing(`${label} ${clientId}`, source);
  return client;
}

/** Resolves a resource by id, name or identifier. */
export async function requireResource(ctx: Ctx, reference: string, source: ReferenceSource): Promise<ResourceWithActions> {
  const resource = (await findResourceById(ctx, reference)) ?? (await findResourceByName(ctx, reference)) ?? (await findResourceByIdentifier(ctx, reference));
  if (resource === undefined) throw missing(`Resource ${reference}`, source);
  return resource;
}

/** Resolves a list of role names from the input field `field`, in order. */
export async function requireRoles(ctx: Ctx, names: string[] | undefined, field: string): Promise<Role[]> {
  const roles: Role[] = [];
  for (const [index, name] of (names ?? []).entries()) roles.push(await requireRole(ctx, name, { field: `${field}.${index}` }));
  return roles;
}
