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
import { InvalidToken } from './errors.ts';
import { isGrantLive } from './grant-liveness.ts';

/** RFC 7662 §2.2: the whole response for a token that is not active, whatever the reason. */
const INACTIVE = { active: false } as const;

export type IntrospectionResponse = typeof INACTIVE | ({ active: true } & Record<string, unknown>);

/**
 * RFC 7662: the introspection endpoint. The caller authenticates as a client, as RFC 7662 §2.1
 * requires. Any active client of the tenant may introspect an access token, because resource
 * servers register as ordinary clients (kind `application` or `agent`) and Mandate does not
 * record which client serves which resource. The caller learns little it did not have: the
 * claims are readable in the JWT itself, and only the `active` state is new. A refresh token is
 * active only for the client it was issued to.
 */
export function registerIntrospectionEndpoint(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/introspect', async (request, reply) => {
    const form = formBody(request.body);
    const client = await authenticateClient(ctx, request, form);
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
  if (!(await isGrantLive(ctx, claims))) return INACTIVE;
  return describeAccessToken(ctx, claims);
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
