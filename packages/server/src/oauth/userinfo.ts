import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { findUser } from '../identity/users.ts';
import { verifyOwnAccessToken } from './access-token.ts';
import { InsufficientScope, InvalidToken, MissingToken } from './errors.ts';
import { isGrantLive } from './grant-liveness.ts';

/**
 * OIDC Core §5.3: claims about the person, for the access token that the authorization code
 * grant returned. OIDC clients call userinfo with that token, whose audience is the resource
 * they asked for, so any audience is accepted here. What admits a token is its `openid` scope:
 * the token endpoint adds `openid` to the scope only when the authorization request contained
 * it, so a client_credentials or exchanged token, which never carries it, cannot read a person's
 * claims. The token must also be unrevoked, and its delegation and person live.
 */
export function registerUserinfoEndpoint(app: FastifyInstance, ctx: ServerContext): void {
  // OIDC Core §5.3.1: the client may send the request with GET or POST.
  app.route({ method: ['GET', 'POST'], url: '/userinfo', handler: (request, reply) => sendUserinfo(ctx, request, reply) });
}

async function sendUserinfo(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const token = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
  if (token === undefined) throw new MissingToken();

  const claims = await verifyOwnAccessToken(ctx, token);
  if (!(await isGrantLive(ctx, claims))) throw new InvalidToken('The access token was revoked.', { detail: `the grant behind access token ${claims.jti} is no longer live` });
  // RFC 9449 §7.1: a DPoP-bound token presented as a bearer token is rejected.
  // NOTE: userinfo does not check DPoP proofs, so DPoP-bound tokens cannot be used here at all.
  if (claims.cnf !== undefined) throw new InvalidToken('The access token is DPoP-bound; userinfo accepts bearer tokens only.');
  if (!claims.scope.split(' ').includes('openid')) throw new InsufficientScope('The access token was not issued for an OpenID Connect request (scope openid).', 'openid');

  const user = await findUser(ctx, claims.sub);
  if (user === undefined || user.status !== 'active') throw new InvalidToken('The token\'s subject is not an active person.');
  return reply.header('cache-control', 'no-store').send({ sub: user.id, name: user.display_name, preferred_username: user.username, ...(user.email === null ? {} : { email: user.email }) });
}
