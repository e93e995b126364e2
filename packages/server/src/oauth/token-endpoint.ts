import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { formBody, requiredParam } from '../http/form.ts';
import { authenticateClient } from './client-authentication.ts';
import { UnsupportedGrantType } from './errors.ts';
import { issueDpopNonce } from './dpop/nonce.ts';
import { dpopBindingOfTokenRequest } from './dpop/token-request.ts';
import { authorizationCodeGrant } from './grants/authorization-code.ts';
import { clientCredentialsGrant } from './grants/client-credentials.ts';
import { refreshTokenGrant } from './grants/refresh-token.ts';
import { TOKEN_EXCHANGE_GRANT, tokenExchangeGrant } from './grants/token-exchange.ts';

/** The grants this server supports; the implicit and password grants are absent on purpose (OAuth 2.1). */
export const GRANTS = {
  authorization_code: authorizationCodeGrant,
  refresh_token: refreshTokenGrant,
  client_credentials: clientCredentialsGrant,
  [TOKEN_EXCHANGE_GRANT]: tokenExchangeGrant,
} as const;

/** RFC 6749 §3.2: the token endpoint. */
export function registerTokenEndpoint(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/token', { config: { rateLimit: { max: ctx.config.rateLimitPerMinute, timeWindow: '1 minute' } } }, async (request, reply) => {
    const form = formBody(request.body);
    const grantType = requiredParam(form, 'grant_type');
    const grant = Object.hasOwn(GRANTS, grantType) ? GRANTS[grantType as keyof typeof GRANTS] : undefined;

    const client = await authenticateClient(ctx, request, form);
    if (grant === undefined) throw new UnsupportedGrantType(`The grant type ${grantType.slice(0, 100)} is not supported.`);

    request.log = request.log.child({ agent: client.client_id });
    const dpop = await dpopBindingOfTokenRequest(ctx, request.headers, client);
    const response = await grant(ctx, client, form, dpop);
    // RFC 9449 §8.2: a fresh nonce with each response lets the client skip the use_dpop_nonce round trip.
    if (ctx.config.dpopNoncesRequired) reply.header('dpop-nonce', issueDpopNonce(ctx));
    return reply.headers({ 'cache-control': 'no-store', pragma: 'no-cache' }).send(response);
  });
}
