import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { findClient } from '../agents/clients.ts';
import { verifyAccessToken } from '../oauth/access-token.ts';
import { InvalidToken } from '../oauth/errors.ts';
import { Problem } from '../http/problem.ts';
import { ADMIN_SCOPE, adminAudience } from './admin-scope.ts';

const actors = new WeakMap<FastifyRequest, string>();

/** The admin client that sent an authenticated admin request, as `client:<client_id>`. */
export function actorOf(request: FastifyRequest): string {
  const actor = actors.get(request);
  if (actor === undefined) throw new Error('The admin request was not authenticated.');
  return actor;
}

/**
 * Creates the onRequest hook that admits only access tokens Mandate issued for the admin audience
 * with the admin scope, held by an active admin client. Anything else is denied.
 */
export function adminAuthentication(ctx: ServerContext) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) {
      sendChallenge(reply, 401, 'Unauthorized', 'The request has no access token. Send an admin access token as "Authorization: Bearer <token>".', 'Bearer realm="mandate"');
      return;
    }

    let claims;
    try {
      claims = await verifyAccessToken(ctx, token, adminAudience(ctx.config.issuer));
    } catch (error) {
      if (!(error instanceof InvalidToken)) throw error;
      request.log.info({ err: { detail: error.message } }, 'admin token rejected');
      sendChallenge(reply, 401, 'Unauthorized', error.description, error.headers['www-authenticate'] ?? 'Bearer realm="mandate"');
      return;
    }

    // RFC 6750 §3.1: a valid token without the needed scope is insufficient_scope, 403.
    const scopes = claims.scope.split(' ');
    if (!scopes.includes(ADMIN_SCOPE)) {
      sendChallenge(reply, 403, 'Forbidden', `The access token lacks the ${ADMIN_SCOPE} scope.`, `Bearer realm="mandate", error="insufficient_scope", scope="${ADMIN_SCOPE}"`);
      return;
    }

    // A token outlives a change to its client, so the client must still be an active admin client.
    const client = await findClient(ctx, claims.client_id);
    if (client === undefined || client.kind !== 'admin' || client.status !== 'active') {
      sendChallenge(reply, 403, 'Forbidden', 'The access token belongs to a client that is no longer an active admin client.', `Bearer realm="mandate", error="insufficient_scope", scope="${ADMIN_SCOPE}"`);
      return;
    }

    actors.set(request, `client:${client.client_id}`);
  };
}

/** RFC 6750 §2.1: `Authorization: Bearer <token>`; the scheme is case-insensitive. */
function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;

  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  return match?.[1];
}

function sendChallenge(reply: FastifyReply, status: 401 | 403, title: string, detail: string, challenge: string): void {
  const problem = new Problem(status, title, detail, { type: status === 401 ? 'urn:mandate:problem:invalid-token' : 'urn:mandate:problem:insufficient-scope' });
  void reply.code(status).header('www-authenticate', challenge).header('cache-control', 'no-store').type('application/problem+json').send(problem.toJSON());
}
