import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import type { Client } from '../agents/clients.ts';
import { formBody, singleParam, type FormBody } from '../http/form.ts';
import { newSecret, nowSeconds, sha256Hex } from '../store/ids.ts';
import { AuthorizationPageError, AuthorizationRedirectError, validateAuthorizationRequest } from './authorization-request.ts';
import { authenticateClient } from './client-authentication.ts';
import { InvalidRequest, RequestNotSupported } from './errors.ts';

/** RFC 9126 §2.2: the URN prefix of the `request_uri` values this server issues. */
export const REQUEST_URI_PREFIX = 'urn:ietf:params:oauth:request_uri:';

/**
 * How long a pushed request waits for the browser. The `request_uri` is spent when the consent
 * page is shown, so this also covers a sign-in on the way there.
 */
export const PUSHED_REQUEST_LIFETIME_SECONDS = 90;

/** Client authentication parameters, which belong to the push and not to the authorization request. */
const CLIENT_AUTHENTICATION_PARAMETERS = new Set(['client_assertion', 'client_assertion_type', 'client_secret']);

/** A pushed request found by its `request_uri`, not yet spent. */
export interface PushedAuthorizationRequest {
  requestUriHash: string;
  /** The authorization request parameters as pushed; a repeated parameter is an array. */
  parameters: Record<string, unknown>;
}

/** RFC 9126 §2: the pushed authorization request endpoint. */
export function registerParEndpoint(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/par', { config: { rateLimit: { max: ctx.config.rateLimitPerMinute, timeWindow: '1 minute' } } }, async (request, reply) => {
    const form = formBody(request.body);
    const client = await authenticateClient(ctx, request, form, { allowPublic: true });

    request.log = request.log.child({ agent: client.client_id });
    const requestUri = await pushAuthorizationRequest(ctx, client, form);
    // RFC 9126 §2.2: 201 with the request_uri and its lifetime.
    return reply.code(201).headers({ 'cache-control': 'no-store', pragma: 'no-cache' }).send({ request_uri: requestUri, expires_in: PUSHED_REQUEST_LIFETIME_SECONDS });
  });
}

/**
 * Validates the pushed parameters as /authorize would (RFC 9126 §2.1) and stores them under a
 * new `request_uri`, of which only the SHA-256 digest is kept. Every validation error is
 * returned to the client as JSON, since nothing is redirected from this endpoint (§2.3).
 */
export async function pushAuthorizationRequest(ctx: ServerContext, client: Client, form: FormBody): Promise<string> {
  // RFC 9126 §2.1: request_uri must not be pushed.
  if (form.request_uri !== undefined) throw new InvalidRequest('The request_uri parameter must not be sent to the pushed authorization request endpoint.');
  if (form.request !== undefined) throw new RequestNotSupported('Request objects are not supported; send the authorization request parameters in the form body.');
  const clientId = singleParam(form, 'client_id');
  if (clientId !== undefined && clientId !== client.client_id) throw new InvalidRequest('client_id does not match the authenticated client.');

  const parameters: Record<string, unknown> = { client_id: client.client_id };
  for (const [name, value] of Object.entries(form)) {
    if (!CLIENT_AUTHENTICATION_PARAMETERS.has(name) && name !== 'client_id') parameters[name] = value;
  }
  await validatePushedParameters(ctx, parameters);

  const requestUri = `${REQUEST_URI_PREFIX}${newSecret()}`;
  const now = nowSeconds();
  await ctx.db.deleteFrom('pushed_authorization_requests').where('expires_at', '<', now).execute();
  await ctx.db
    .insertInto('pushed_authorization_requests')
    .values({ request_uri_hash: sha256Hex(requestUri), tenant_id: ctx.tenantId, client_id: client.client_id, parameters: JSON.stringify(parameters), expires_at: now + PUSHED_REQUEST_LIFETIME_SECONDS, used_at: null })
    .execute();
  return requestUri;
}

async function validatePushedParameters(ctx: ServerContext, parameters: Record<string, unknown>): Promise<void> {
  try {
    await validateAuthorizationRequest(ctx, parameters);
  } catch (error) {
    if (error instanceof AuthorizationRedirectError) throw error.error;
    if (error instanceof AuthorizationPageError) throw new InvalidRequest(error.message);
    throw error;
  }
}

/**
 * RFC 9126 §4: finds the pushed request named by `request_uri` at the authorization endpoint,
 * for the `client_id` sent with it. Returns undefined when the request has no `request_uri`;
 * every other parameter of such a request is ignored. An unknown, expired, spent or foreign
 * `request_uri` is shown as an error page, because no redirect URI can be trusted for it.
 */
export async function findPushedAuthorizationRequest(ctx: ServerContext, query: Record<string, unknown>): Promise<PushedAuthorizationRequest | undefined> {
  const requestUri = query.request_uri;
  if (requestUri === undefined) return undefined;

  const clientId = query.client_id;
  if (typeof requestUri !== 'string' || !requestUri.startsWith(REQUEST_URI_PREFIX)) throw new AuthorizationPageError('The request_uri is not one this server issued.');
  if (typeof clientId !== 'string' || clientId === '') throw new AuthorizationPageError('A request with request_uri must also carry client_id.');

  const requestUriHash = sha256Hex(requestUri);
  const row = await ctx.db.selectFrom('pushed_authorization_requests').selectAll().where('request_uri_hash', '=', requestUriHash).where('tenant_id', '=', ctx.tenantId).executeTakeFirst();
  // RFC 9126 §4: the request_uri must have been pushed by this client, and be unexpired and unused.
  if (row === undefined || row.client_id !== clientId || row.used_at !== null || row.expires_at <= nowSeconds()) {
    throw new AuthorizationPageError('The request_uri is unknown, expired or already used, or was pushed by another client. Start the authorization again.');
  }
  return { requestUriHash, parameters: JSON.parse(row.parameters) as Record<string, unknown> };
}

/** Spends a pushed request once; a second use, even a concurrent one, is an error page. */
export async function spendPushedAuthorizationRequest(ctx: ServerContext, pushed: PushedAuthorizationRequest): Promise<void> {
  const now = nowSeconds();
  const spent = await ctx.db
    .updateTable('pushed_authorization_requests')
    .set({ used_at: now })
    .where('request_uri_hash', '=', pushed.requestUriHash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  if (Number(spent.numUpdatedRows) !== 1) throw new AuthorizationPageError('The request_uri was already used or has expired. Start the authorization again.');
}
