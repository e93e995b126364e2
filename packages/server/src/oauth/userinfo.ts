import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { findUser } from '../identity/users.ts';
import { verifyOwnAccessToken } from './access-token.ts';
import { InsufficientScope, InvalidToken, MissingToken, OAuthError } from './errors.ts';
import { issueDpopNonce } from './dpop/nonce.ts';
import { presentedToken, useDpopChallenge, verifyDpopResourceRequest, type PresentedToken } from './dpop/resource-request.ts';
import { isGrantLive } from './grant-liveness.ts';

/**
 * OIDC Core §5.3: claims about the person, for the access token that the authorization code
 * grant returned. OIDC clients call userinfo with that token, whose audience is the resource
 * they asked for, so any audience is accepted here. What admits a token is its `openid` scope:
 * the token endpoint adds `openid` to the scope only when the authorization request contained
 * it, so a client_credentials or exchanged token, which never carries it, cannot read a person's
 * claims. The token must also be unrevoked, and its delegation and person live. A DPoP-bound
 * token is accepted only under the `DPoP` scheme with a proof for this endpoint (RFC 9449 §7).
 */
export function registerUserinfoEndpoint(app: FastifyInstance, ctx: ServerContext): void {
  // OIDC Core §5.3.1: the client may send the request with GET or POST.
  app.route({ method: ['GET', 'POST'], url: '/userinfo', handler: (request, reply) => sendUserinfo(ctx, request, reply) });
}

async function sendUserinfo(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const presented = presentedToken(request.headers.authorization);
  if (presented === undefined) throw new MissingToken();

  try {
    return await sendClaims(ctx, presented, request, reply);
  } catch (error) {
    // RFC 9449 §7.1: a request that used the DPoP scheme gets a DPoP challenge.
    if (presented.scheme === 'DPoP' && error instanceof OAuthError) useDpopChallenge(error);
    throw error;
  }
}

async function sendClaims(ctx: ServerContext, presented: PresentedToken, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const claims = await verifyOwnAccessToken(ctx, presented.token);

  // RFC 9449 §7: a DPoP-bound token needs the DPoP scheme and a proof by its key for this request.
  const proof = { proof: request.headers.dpop, method: request.method, url: `${ctx.config.issuer}/userinfo` };
  await verifyDpopResourceRequest(ctx, presented, claims, proof);

  if (!(await isGrantLive(ctx, claims))) throw new InvalidToken('The access token was revoked.', { detail: `the grant behind access token ${claims.jti} is no longer live` });
  if (!claims.scope.split(' ').includes('openid')) throw new InsufficientScope('The access token was not issued for an OpenID Connect request (scope openid).', 'openid');

  const user = await findUser(ctx, claims.sub);
  if (user === undefined || user.status !== 'active') throw new InvalidToken('The token\'s subject is not an active person.');

  // RFC 9449 §9: a fresh nonce with each accepted DPoP request spares the client a use_dpop_nonce round trip.
  if (presented.scheme === 'DPoP' && ctx.config.dpopNoncesRequired) reply.header('dpop-nonce', issueDpopNonce(ctx));
  return reply.header('cache-control', 'no-store').send({ sub: user.id, name: user.display_name, preferred_username: user.username, ...(user.email === null ? {} : { email: user.email }) });
}
