import type { SchemaJson } from './cedar-wasm.ts';
import type { ServerContext } from '../context.ts';
import { listResources } from '../resources/registration.ts';
import { nowSeconds } from '../store/ids.ts';
import type { Db } from '../store/db.ts';
import type { ResourceWithActions } from '../resources/registry.ts';
import { parseArgumentDeclarations } from './arguments.ts';
import { compilePolicy, formatProblems, type PolicySet } from './cedar-compile.ts';
import { buildCedarSchema } from './cedar-schema.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

/** Largest policy text the admin API accepts, in UTF-8 bytes. */
export const MAX_POLICY_SOURCE_BYTES = 256 * 1024;

/** A saved policy version. Version 0 is the empty policy of a tenant that never saved one. */
export interface StoredPolicy {
  version: number;
  source: string;
  created_at: number | null;
  created_by: string | null;
}

/** Returns the version in force: the highest saved one, or 0. */
export async function currentPolicyVersion(ctx: Ctx): Promise<number> {
  const row = await ctx.db.selectFrom('policies').select((eb) => eb.fn.max('version').as('version')).where('tenant_id', '=', ctx.tenantId).executeTakeFirst();
  return row?.version === null || row?.version === undefined ? 0 : Number(row.version);
}

/** Reads one saved version, or the version in force when `version` is absent. */
export async function readPolicy(ctx: Ctx, version?: number): Promise<StoredPolicy> {
  const requested = version ?? (await currentPolicyVersion(ctx));
  if (requested === 0) return { version: 0, source: '', created_at: null, created_by: null };

  const row = await ctx.db.selectFrom('policies').select(['version', 'source', 'created_at', 'created_by']).where('tenant_id', '=', ctx.tenantId).where('version', '=', requested).executeTakeFirstOrThrow();
  return { version: Number(row.version), source: row.source, created_at: Number(row.created_at), created_by: row.created_by };
}

/** Inserts the next version. Run it in the transaction that audits it, so two concurrent saves collide on the primary key. */
export async function insertPolicyVersion(trx: Db, tenantId: string, source: string, actor: string): Promise<StoredPolicy> {
  const version = (await currentPolicyVersion({ db: trx, tenantId })) + 1;
  const row = { tenant_id: tenantId, version, source, created_at: nowSeconds(), created_by: actor };
  await trx.insertInto('policies').values(row).execute();
  return { version, source, created_at: row.created_at, created_by: actor };
}

/** Builds the Cedar schema from the tenant's current resources and their declared arguments. */
export async function tenantCedarSchema(ctx: Ctx): Promise<SchemaJson<string>> {
  return schemaOf(await listResources(ctx));
}

/** Throws when a stored argument declaration is damaged. */
function schemaOf(resources: ResourceWithActions[]): SchemaJson<string> {
  return buildCedarSchema(resources.map((resource) => ({ name: resource.name, actions: resource.actions.map((action) => ({ name: action.name, arguments: parseArgumentDeclarations(action.arguments) })) })));
}

/**
 * Compiled policy sets of this process, per database handle and tenant. Each server has its
 * own handle, so two servers in one process keep separate caches, as two processes would.
 */
const compiledPolicies = new WeakMap<Db, Map<string, PolicySet>>();

/**
 * Returns the policy set in force. Each call reads the current version (one indexed query) and
 * compiles again only when it changed, so a policy saved by any process applies to the next
 * decision in every process. A stored policy that does not compile gives an `invalid` set,
 * which denies every decision that reaches Cedar, and is logged with Cedar's messages.
 *
 * NOTE: the schema is built when a version is compiled, and a resource created later is not
 * checked against that version. If the policy then fails on the new action's arguments, Cedar
 * raises an evaluation error at decision time, which denies.
 */
export async function policySetInForce(ctx: Pick<ServerContext, 'db' | 'tenantId' | 'logger'>): Promise<PolicySet> {
  const version = await currentPolicyVersion(ctx);
  let cache = compiledPolicies.get(ctx.db);
  if (cache === undefined) {
    cache = new Map();
    compiledPolicies.set(ctx.db, cache);
  }

  const cached = cache.get(ctx.tenantId);
  if (cached?.version === version) return cached;

  const loaded = await compileStoredPolicy(ctx, version);
  // A slower load of an older version must not replace a newer one that finished first.
  if ((cache.get(ctx.tenantId)?.version ?? -1) < loaded.version) cache.set(ctx.tenantId, loaded);
  return loaded;
}

async function compileStoredPolicy(ctx: Pick<ServerContext, 'db' | 'tenantId' | 'logger'>, version: number): Promise<PolicySet> {
  if (version === 0) return { kind: 'none', version: 0 };

  // Database errors propagate and nothing is cached, so a passing outage does not stick to the version.
  const stored = await readPolicy(ctx, version);
  const resources = await listResources(ctx);

  let errors: string[];
  try {
    const result = compilePolicy(stored.source, version, schemaOf(resources));
    if (result.ok) return result.policySet;
    errors = formatProblems(result.errors);
  } catch (error) {
    errors = [`The policy could not be compiled: ${error instanceof Error ? error.message : String(error)}`];
  }

  ctx.logger.error({ tenant: ctx.tenantId, policy_version: version, errors }, 'the stored policy does not compile, so every decision that reaches it is denied; save a corrected policy');
  return { kind: 'invalid', version, errors };
}
