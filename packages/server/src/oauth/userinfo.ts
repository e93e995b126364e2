import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { findUser } from '../identity/users.ts';
import { verifyAccessToken } from './access-token.ts';
import { InvalidToken, MissingToken } from './errors.ts';

/** Returns the audience of access tokens meant for the userinfo endpoint itself. */
export function userinfoAudience(issuer: string): string {
  return `${issuer}/userinfo`;
}

/** OIDC Core §5.3: claims about the signed-in person, for a token issued to read them. */
export function registerUserinfoEndpoint(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/userinfo', async (request, reply) => {
    const token = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (token === undefined) throw new MissingToken();

    const claims = await verifyAccessToken(ctx, token, userinfoAudience(ctx.config.issuer));
    const user = await findUser(ctx, claims.sub);
    if (user === undefined || user.status !== 'active') throw new InvalidToken('The token\'s subject is not an active person.');
    return reply.header('cache-control', 'no-store').send({ sub: user.id, name: user.display_name, preferred_username: user.username, ...(user.email === null ? {} : { email: user.email }) });
  });
}
