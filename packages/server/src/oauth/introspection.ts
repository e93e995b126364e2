import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import type { Client } from '../agents/clients.ts';
import { findLiveDelegation } from './delegation.ts';
import { findResourceById } from '../resources/registry.ts';
import { formBody, requiredParam, singleParam } from '../http/form.ts';
import { nowSeconds, sha256Hex } from '../store/ids.ts';
import type { RefreshTokenTable } from '../store/schema.ts';
import { verifyOwnAccessToken, type AccessTokenClaims } from './access-token.ts';
import { authenticateClient } from './client-authentication.ts';
import { InvalidClient, InvalidToken } from './errors.ts';
import { isGrantLive } from './grant-liveness.ts';

/** RFC 7662 §2.2: the whole response for a token that is not active, whatever the reason. */
const INACTIVE = { active: false } as const;

export type IntrospectionResponse = typeof INACTIVE | ({ active: true } & Record<string, unknown>);

/**
 * RFC 7662: the introspection endpoint. The caller authenticates as a client, as RFC 7662 §2.1
 * requires, and what it may learn depends on its kind, because RFC 7662 §4 recommends limiting
 * what a client learns:
 *
 * - An admin client may introspect any token of the tenant. A resource server that introspects
 *   the tokens it receives needs an admin client, because Mandate does not record which client
 *   serves which resource.
 * - An agent or application may introspect only a token issued to it (its `client_id`) or one in
 *   which it is an actor, anywhere in the `act` chain. Any other token gets `{"active": false}`,
 *   as RFC 7662 §2.2 allows, so the caller cannot read the claims of other clients' tokens.
 * - A client that registered itself and is not an agent yet gets `invalid_client`: it may do
 *   nothing until an administrator reviews it.
 *
 * A refresh token is active only for the client it was issued to, whatever the caller's kind.
 *
 * No DPoP proof is checked here, because the caller is the resource server, not the holder of
 * the token's key (RFC 7662 §2.1). The resource server checks the proof the client sent it, and
 * for a bound token the response gives it `cnf.jkt` to compare with the proof's key
 * (RFC 9449 §6.2).
 */
export function registerIntrospectionEndpoint(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/introspect', async (request, reply) => {
    const form = formBody(request.body);
    const client = await authenticateClient(ctx, request, form);
    if (client.kind === 'registered') {
      throw new InvalidClient('This client registered itself and an administrator has not yet made it an agent, so it may not introspect tokens.');
    }
    const token = requiredParam(form, 'token');
    // RFC 7662 §2.1 lets the server ignore the hint, and the two token types have different shapes.
    singleParam(form, 'token_type_hint');

    request.log = request.log.child({ agent: client.client_id });
    const response = await introspectToken(ctx, client, token);
    return reply.headers({ 'cache-control': 'no-store', pragma: 'no-cache' }).send(response);
  });
}

/** Describes a token for the calling client. An unknown, expired, revoked or foreign token gets exactly `{"active": false}`. */
export async function introspectToken(ctx: ServerContext, client: Client, token: string): Promise<IntrospectionResponse> {
  const refreshToken = await ctx.db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', sha256Hex(token)).where('tenant_id', '=', ctx.tenantId).executeTakeFirst();
  if (refreshToken !== undefined) return introspectRefreshToken(ctx, client, refreshToken);

  let claims: AccessTokenClaims;
  try {
    claims = await verifyOwnAccessToken(ctx, token);
  } catch (error) {
    // A database failure propagates as server_error rather than reporting a live token inactive or the reverse.
    if (error instanceof InvalidToken) return INACTIVE;
    throw error;
  }
  if (!mayIntrospect(client, claims)) return INACTIVE;
  if (!(await isGrantLive(ctx, claims))) return INACTIVE;
  return describeAccessToken(ctx, claims);
}

/** True when the client is an admin client, or the token was issued to it, or it is an actor anywhere in the token's `act` chain. */
function mayIntrospect(client: Client, claims: AccessTokenClaims): boolean {
  if (client.kind === 'admin' || claims.client_id === client.client_id) return true;

  // RFC 8693 §4.1: each nested `act` names an earlier actor. A malformed level ends the walk, and
  // the verified token was signed by Mandate, which nests at most maxDelegationChainDepth levels.
  let level: unknown = claims.act;
  while (typeof level === 'object' && level !== null) {
    const actor = level as { sub?: unknown; act?: unknown };
    if (actor.sub === client.client_id) return true;
    level = actor.act;
  }
  return false;
}

/** RFC 7662 §2.2 members of an active access token, plus the delegation id that revocation works by. */
function describeAccessToken(ctx: ServerContext, claims: AccessTokenClaims): IntrospectionResponse {
  const cnf = claims.cnf as { jkt?: unknown } | undefined;
  const dpopBound = typeof cnf === 'object' && cnf !== null && typeof cnf.jkt === 'string';
  return {
    active: true,
    scope: claims.scope,
    client_id: claims.client_id,
    sub: claims.sub,
    aud: claims.aud,
    iss: ctx.config.issuer,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    // RFC 9449 §6.2: a DPoP-bound token is of type DPoP, with its key thumbprint in `cnf`.
    token_type: dpopBound ? 'DPoP' : 'Bearer',
    ...(claims.act === undefined ? {} : { act: claims.act }),
    ...(dpopBound ? { cnf } : {}),
    ...(claims.delegation_id === undefined ? {} : { delegation_id: claims.delegation_id }),
    // RFC 9396 §9.2: the resource server learns the approved details from introspection too.
    ...(claims.authorization_details === undefined ? {} : { authorization_details: claims.authorization_details }),
  };
}

/**
 * Describes a refresh token, which is active only for its own client, and only while it is
 * unspent, unrevoked and not idle too long, and its delegation and person are live. `exp` is
 * the end of its idle lifetime.
 */
async function introspectRefreshToken(ctx: ServerContext, client: Client, row: RefreshTokenTable): Promise<IntrospectionResponse> {
  if (row.client_id !== client.client_id) return INACTIVE;
  if (row.revoked_at !== null || row.used_at !== null || row.idle_expires_at <= nowSeconds()) return INACTIVE;

  const delegation = await findLiveDelegation(ctx, row.delegation_id);
  const user = await ctx.db.selectFrom('users').select('status').where('tenant_id', '=', ctx.tenantId).where('id', '=', row.user_id).executeTakeFirst();
  const resource = await findResourceById(ctx, row.resource_id);
  if (delegation === undefined || user?.status !== 'active' || resource === undefined) return INACTIVE;

  return {
    active: true,
    scope: row.scope,
    client_id: row.client_id,
    sub: row.user_id,
    aud: resource.identifier,
    iss: ctx.config.issuer,
    exp: row.idle_expires_at,
    iat: row.created_at,
    delegation_id: row.delegation_id,
  };
}
