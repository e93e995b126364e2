import type { JSONWebKeySet } from 'jose';
import type { ServerContext } from '../src/context.ts';
import { createClient } from '../src/agents/clients.ts';
import { createUser } from '../src/identity/users.ts';
import { newId, nowSeconds } from '../src/store/ids.ts';

export const PASSWORD = 'correct horse battery staple';

/** Inserts a role with its permissions and returns its id. */
export async function createRole(ctx: ServerContext, name: string, permissions: Array<[resource: string, action: string]>): Promise<string> {
  const id = newId('rol');
  await ctx.db.insertInto('roles').values({ id, tenant_id: ctx.tenantId, name, description: name, created_at: nowSeconds() }).execute();
  for (const [resource, action] of permissions) await ctx.db.insertInto('role_permissions').values({ role_id: id, resource, action }).execute();
  return id;
}

export interface ActionSpec {
  name: string;
  method?: string;
  pathPrefix?: string;
  requiresApproval?: boolean;
}

/** Inserts a resource with its actions. */
export async function createResource(ctx: ServerContext, input: { name: string; identifier: string; upstream?: string; upstreamAuth?: string; ttl?: number; actions: ActionSpec[] }) {
  const id = newId('res');
  await ctx.db
    .insertInto('resources')
    .values({
      id,
      tenant_id: ctx.tenantId,
      name: input.name,
      identifier: input.identifier,
      display_name: `${input.name} API`,
      access_token_ttl_seconds: input.ttl ?? 600,
      upstream_base_url: input.upstream ?? null,
      upstream_auth: input.upstreamAuth ?? (input.upstream === undefined ? null : 'bearer'),
      created_at: nowSeconds(),
    })
    .execute();
  for (const action of input.actions) {
    await ctx.db
      .insertInto('resource_actions')
      .values({ resource_id: id, name: action.name, description: `Can ${action.name}`, method: action.method ?? '*', path_prefix: action.pathPrefix ?? '/', requires_approval: action.requiresApproval === true ? 1 : 0 })
      .execute();
  }
  return { id, identifier: input.identifier };
}

/**
 * A small world: person alice (reader + writer on the resource), person bob (reader only),
 * an agent with reader + writer roles and a redirect URI, and an application for people.
 */
export async function seedWorld(ctx: ServerContext, options: { redirectUri?: string; jwks?: JSONWebKeySet; identifier?: string } = {}) {
  const identifier = options.identifier ?? 'https://api.example.test/mail';
  const resource = await createResource(ctx, {
    name: 'mail',
    identifier,
    actions: [{ name: 'mail.read', method: 'GET', pathPrefix: '/messages' }, { name: 'mail.send', method: 'POST', pathPrefix: '/messages' }],
  });
  const reader = await createRole(ctx, 'mail-reader', [[identifier, 'mail.read']]);
  const writer = await createRole(ctx, 'mail-writer', [[identifier, 'mail.send']]);

  const alice = await createUser(ctx, { username: 'alice', password: PASSWORD, displayName: 'Alice Example' });
  const bob = await createUser(ctx, { username: 'bob', password: PASSWORD, displayName: 'Bob Example' });
  await ctx.db.insertInto('user_roles').values([{ user_id: alice.id, role_id: reader }, { user_id: alice.id, role_id: writer }, { user_id: bob.id, role_id: reader }]).execute();

  const redirectUri = options.redirectUri ?? 'http://127.0.0.1:9/callback';
  const agent = await createClient(ctx, { kind: 'agent', name: 'Mail assistant', redirectUris: [redirectUri], jwks: options.jwks });
  await ctx.db.insertInto('client_roles').values([{ client_id: agent.client.client_id, role_id: reader }, { client_id: agent.client.client_id, role_id: writer }]).execute();
  const app = await createClient(ctx, { kind: 'application', name: 'Alice portal', redirectUris: [redirectUri] });

  return { resource, roles: { reader, writer }, alice, bob, agent, app, redirectUri };
}
