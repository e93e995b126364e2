import type { ServerContext } from '../context.ts';
import { newId, nowSeconds } from '../store/ids.ts';
import type { ResourceActionTable, ResourceTable } from '../store/schema.ts';
import type { ResourceWithActions } from './registry.ts';
import { serializeArgumentDeclarations, type ArgumentDeclarations } from '../policy/arguments.ts';

export interface NewResourceAction {
  name: string;
  description: string;
  method: string;
  pathPrefix: string;
  requiresApproval: boolean;
  /** Arguments that policies may read, by name, or empty for none. */
  arguments?: ArgumentDeclarations;
}

/** A validated resource; the caller has applied defaults and checked the token lifetime limit. */
export interface NewResource {
  name: string;
  identifier: string;
  displayName: string;
  accessTokenTtlSeconds: number;
  upstreamBaseUrl: string | null;
  upstreamAuth: string | null;
  actions: NewResourceAction[];
}

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

/** Registers a resource with its actions; run it in a transaction so that a failure leaves neither. */
export async function createResource(ctx: Ctx, input: NewResource): Promise<ResourceWithActions> {
  const resource: ResourceTable = {
    id: newId('res'),
    tenant_id: ctx.tenantId,
    name: input.name,
    identifier: input.identifier,
    display_name: input.displayName,
    access_token_ttl_seconds: input.accessTokenTtlSeconds,
    upstream_base_url: input.upstreamBaseUrl,
    upstream_auth: input.upstreamAuth,
    created_at: nowSeconds(),
  };
  await ctx.db.insertInto('resources').values(resource).execute();

  const actions: ResourceActionTable[] = input.actions.map((action) => ({
    resource_id: resource.id,
    name: action.name,
    description: action.description,
    method: action.method,
    path_prefix: action.pathPrefix,
    requires_approval: action.requiresApproval ? 1 : 0,
    arguments: serializeArgumentDeclarations(action.arguments),
  }));
  if (actions.length > 0) await ctx.db.insertInto('resource_actions').values(actions).execute();
  return { ...resource, actions };
}

/** Lists the tenant's resources with their actions, by name. */
export async function listResources(ctx: Ctx): Promise<ResourceWithActions[]> {
  const resources = await ctx.db.selectFrom('resources').selectAll().where('tenant_id', '=', ctx.tenantId).orderBy('name').execute();
  if (resources.length === 0) return [];

  const actions = await ctx.db
    .selectFrom('resource_actions')
    .selectAll()
    .where(
      'resource_id',
      'in',
      resources.map((resource) => resource.id),
    )
    .orderBy('name')
    .execute();
  return resources.map((resource) => ({ ...resource, actions: actions.filter((action) => action.resource_id === resource.id) }));
}
