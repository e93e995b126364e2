import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { DEFAULT_ACCESS_TOKEN_TTL_SECONDS, MAX_ACCESS_TOKEN_TTL_SECONDS } from '../config/schema.ts';
import { gatewayIdentifier, type ResourceAction, type ResourceWithActions } from '../resources/registry.ts';
import { createResource, listResources } from '../resources/registration.ts';
import { auditedTransaction } from './audited-transaction.ts';
import { rejectDuplicates } from './constraint-errors.ts';
import { parseInput } from './input.ts';
import { ARGUMENT_TYPES, MAX_DECLARED_ARGUMENTS, isArgumentName, parseArgumentDeclarations, type ArgumentDeclarations } from '../policy/arguments.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId' | 'config'>;

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', '*'] as const;

/** Cedar attribute names that `context.arguments.<name>` can read: identifiers that are not reserved words. */
const argumentDeclarations = z
  .record(z.string(), z.enum(ARGUMENT_TYPES, `must be one of ${ARGUMENT_TYPES.join(', ')}`))
  .superRefine((declarations, check) => {
    const names = Object.keys(declarations);
    if (names.length > MAX_DECLARED_ARGUMENTS) check.addIssue({ code: 'custom', message: `must declare at most ${MAX_DECLARED_ARGUMENTS} arguments` });
    for (const name of names.filter((candidate) => !isArgumentName(candidate))) {
      check.addIssue({ code: 'custom', path: [name], message: 'must be an identifier of at most 64 letters, digits or _ that starts with a letter or a single _ and is not a Cedar reserved word' });
    }
  })
  .describe('Top-level members of the JSON body that policies may read (context.arguments), with their Cedar types');

const action = z
  .strictObject({
    // RFC 6749 §3.3 scope-token characters, without `*`, which roles use as the wildcard.
    name: z.string().regex(/^[\x21\x23-\x29\x2B-\x5B\x5D-\x7E]{1,100}$/, 'must be a scope token (printable ASCII without space, ", \\ or *)'),
    description: z.string().max(500).default(''),
    method: z.enum(HTTP_METHODS, `must be one of ${HTTP_METHODS.join(', ')}`).default('*').describe('HTTP method the gateway maps to this action, or *'),
    path_prefix: z.string().regex(/^\/[^?#\s]*$/, 'must start with / and contain no query, fragment or space').max(1000).default('/'),
    requires_approval: z.boolean().default(false).describe('Pause each call for the person to approve'),
    arguments: argumentDeclarations.optional(),
  })
  .describe('An action (scope) of the resource');

/** RFC 8707 §2: a resource identifier is an absolute URI without a fragment. */
const identifier = z
  .string()
  .max(2000)
  .refine((value) => URL.canParse(value) && !value.includes('#'), 'must be an absolute URI without a fragment');

const upstreamBaseUrl = z
  .string()
  .max(2000)
  .refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol) && !value.includes('?') && !value.includes('#'), 'must be an absolute http(s) URL without query or fragment');

export const createResourceBody = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be 1 to 63 lowercase letters, digits or -, starting with a letter or digit')
      .describe('Short name used in gateway paths and CLI commands'),
    identifier: identifier.optional().describe('Token audience; defaults to <issuer>/gateway/<name> when upstream_base_url is set'),
    display_name: z.string().trim().min(1).max(200).optional().describe('Name shown to people; defaults to the name'),
    access_token_ttl_seconds: z
      .number()
      .int()
      .min(60, 'must be at least 60 seconds')
      .max(MAX_ACCESS_TOKEN_TTL_SECONDS, `must be at most ${MAX_ACCESS_TOKEN_TTL_SECONDS} seconds (30 minutes), because agents get short-lived access tokens only`)
      .default(DEFAULT_ACCESS_TOKEN_TTL_SECONDS)
      .describe('Lifetime of access tokens for this resource, in seconds'),
    upstream_base_url: upstreamBaseUrl.optional().describe('Base URL the gateway forwards to'),
    upstream_auth: z
      .string()
      .regex(/^(bearer|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/, 'must be bearer or header:<Name>')
      .optional()
      .describe('How the gateway sends the credential: bearer, or header:<Name>; defaults to bearer when upstream_base_url is set'),
    actions: z
      .array(action)
      .max(200)
      .default([])
      .refine((list) => new Set(list.map((item) => item.name)).size === list.length, 'must not repeat an action name'),
  })
  .superRefine((body, check) => {
    if (body.identifier === undefined && body.upstream_base_url === undefined) {
      check.addIssue({ code: 'custom', path: ['identifier'], message: 'is required when upstream_base_url is absent' });
    }
    if (body.upstream_auth !== undefined && body.upstream_base_url === undefined) {
      check.addIssue({ code: 'custom', path: ['upstream_auth'], message: 'needs upstream_base_url' });
    }
  })
  .describe('A new resource (an API, MCP server or upstream reached through the gateway)');

/** A resource as the admin API returns it: each action's declared arguments as an object. */
export interface ResourceRecord extends Omit<ResourceWithActions, 'actions'> {
  actions: Array<Omit<ResourceAction, 'arguments'> & { arguments: ArgumentDeclarations }>;
}

/** Registers a resource with its actions, atomically. */
export async function createResourceRecord(ctx: Ctx, input: unknown, actor: string): Promise<ResourceRecord> {
  const body = parseInput(createResourceBody, input);
  checkUpstreamPolicy(ctx, body.upstream_base_url);

  const upstream = body.upstream_base_url ?? null;
  const resourceIdentifier = body.identifier ?? gatewayIdentifier(ctx.config.issuer, body.name);

  return rejectDuplicates(`A resource named ${body.name} or with identifier ${resourceIdentifier} already exists.`, () =>
    auditedTransaction(ctx, async (trx) => {
      const resource = await createResource(
        { db: trx, tenantId: ctx.tenantId },
        {
          name: body.name,
          identifier: resourceIdentifier,
          displayName: body.display_name ?? body.name,
          accessTokenTtlSeconds: body.access_token_ttl_seconds,
          upstreamBaseUrl: upstream,
          upstreamAuth: upstream === null ? null : (body.upstream_auth ?? 'bearer'),
          actions: body.actions.map((item) => ({ name: item.name, description: item.description, method: item.method, pathPrefix: item.path_prefix, requiresApproval: item.requires_approval, arguments: item.arguments ?? {} })),
        },
      );
      const event = { event: 'resource.created', actor, target: { resource: resource.identifier, name: resource.name, actions: resource.actions.map((item) => item.name) }, outcome: { result: 'created' } };
      return { result: presentResource(resource), events: [event] };
    }),
  );
}

export async function listResourceRecords(ctx: Ctx): Promise<ResourceRecord[]> {
  return (await listResources(ctx)).map(presentResource);
}

function presentResource(resource: ResourceWithActions): ResourceRecord {
  return { ...resource, actions: resource.actions.map((action) => ({ ...action, arguments: parseArgumentDeclarations(action.arguments) })) };
}

/** Plain http upstreams are refused unless the deployment allows loopback upstreams (tests and examples). */
function checkUpstreamPolicy(ctx: Ctx, upstream: string | undefined): void {
  if (upstream === undefined || upstream.startsWith('https:') || ctx.config.allowLoopbackUpstreams) return;

  parseInput(
    z.strictObject({ upstream_base_url: z.string().startsWith('https:', 'must use https (plain http is allowed only with allowLoopbackUpstreams)') }),
    { upstream_base_url: upstream },
  );
}
