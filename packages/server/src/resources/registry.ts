import type { ServerContext } from '../context.ts';
import type { ResourceActionTable, ResourceTable } from '../store/schema.ts';

export type Resource = ResourceTable;
export type ResourceAction = ResourceActionTable;

export interface ResourceWithActions extends Resource {
  actions: ResourceAction[];
}

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

/** Finds a resource by its identifier, the URI that RFC 8707 `resource` and the token `aud` carry. */
export async function findResourceByIdentifier(ctx: Ctx, identifier: string): Promise<ResourceWithActions | undefined> {
  const resource = await ctx.db.selectFrom('resources').selectAll().where('tenant_id', '=', ctx.tenantId).where('identifier', '=', identifier).executeTakeFirst();
  return resource === undefined ? undefined : withActions(ctx, resource);
}

export async function findResourceByName(ctx: Ctx, name: string): Promise<ResourceWithActions | undefined> {
  const resource = await ctx.db.selectFrom('resources').selectAll().where('tenant_id', '=', ctx.tenantId).where('name', '=', name).executeTakeFirst();
  return resource === undefined ? undefined : withActions(ctx, resource);
}

export async function findResourceById(ctx: Ctx, id: string): Promise<ResourceWithActions | undefined> {
  const resource = await ctx.db.selectFrom('resources').selectAll().where('tenant_id', '=', ctx.tenantId).where('id', '=', id).executeTakeFirst();
  return resource === undefined ? undefined : withActions(ctx, resource);
}

async function withActions(ctx: Ctx, resource: Resource): Promise<ResourceWithActions> {
  const actions = await ctx.db.selectFrom('resource_actions').selectAll().where('resource_id', '=', resource.id).orderBy('name').execute();
  return { ...resource, actions };
}

/** The gateway path of a resource whose upstream Mandate proxies: its identifier by default. */
export function gatewayIdentifier(issuer: string, name: string): string {
  return `${issuer}/gateway/${name}`;
}
