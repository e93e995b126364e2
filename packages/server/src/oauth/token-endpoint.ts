import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { formBody, requiredParam } from '../http/form.ts';
import { authenticateClient } from './client-authentication.ts';
import { UnauthorizedClient, UnsupportedGrantType } from './errors.ts';
import { clientRegisteredGrant, type Client } from '../agents/clients.ts';
import { REGISTERED_CLIENT_GRANTS } from '../registration/client-metadata.ts';
import { issueDpopNonce } from './dpop/nonce.ts';
import { dpopBindingOfTokenRequest } from './dpop/token-request.ts';
import { authorizationCodeGrant } from './grants/authorization-code.ts';
import { clientCredentialsGrant } from './grants/client-credentials.ts';
import { refreshTokenGrant } from './grants/refresh-token.ts';
import { TOKEN_EXCHANGE_GRANT, tokenExchangeGrant } from './grants/token-exchange.ts';
import { CIBA_GRANT, cibaGrant } from './grants/ciba.ts';

/** The grants this server supports; the implicit and password grants are absent on purpose (OAuth 2.1). */
export const GRANTS = {
  authorization_code: authorizationCodeGrant,
  refresh_token: refreshTokenGrant,
  client_credentials: clientCredentialsGrant,
  [TOKEN_EXCHANGE_GRANT]: tokenExchangeGrant,
  [CIBA_GRANT]: cibaGrant,
} as const;

/** RFC 6749 §3.2: the token endpoint. */
export function registerTokenEndpoint(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/token', { config: { rateLimit: { max: ctx.config.rateLimitPerMinute, timeWindow: '1 minute' } } }, async (request, reply) => {
    const form = formBody(request.body);
    const grantType = requiredParam(form, 'grant_type');
    const grant = Object.hasOwn(GRANTS, grantType) ? GRANTS[grantType as keyof typeof GRANTS] : undefined;

    const client = await authenticateClient(ctx, request, form, { allowPublic: true });
    if (grant === undefined) throw new UnsupportedGrantType(`The grant type ${grantType.slice(0, 100)} is not supported.`);
    checkClientMayUseGrant(client, grantType);

    request.log = request.log.child({ agent: client.client_id });
    const dpop = await dpopBindingOfTokenRequest(ctx, request.headers, client);
    const response = await grant(ctx, client, form, dpop);
    // RFC 9449 §8.2: a fresh nonce with each response lets the client skip the use_dpop_nonce round trip.
    if (ctx.config.dpopNoncesRequired) reply.header('dpop-nonce', issueDpopNonce(ctx));
    return reply.headers({ 'cache-control': 'no-store', pragma: 'no-cache' }).send(response);
  });
}

/**
 * Rejects grants the client may not use (RFC 6749 §5.2 unauthorized_client). A self-registered
 * client does nothing until an administrator makes it an agent. Even then it keeps to the code flow
 * and its refresh tokens, because client_credentials or token exchange would let it act without a
 * person's consent.
 */
export function checkClientMayUseGrant(client: Client, grantType: string): void {
  if (client.kind === 'registered') throw new UnauthorizedClient('This client registered itself and is waiting for an administrator to make it an agent.');
  const selfRegistered = client.registration !== null && client.registration !== undefined;
  if ((selfRegistered || client.token_endpoint_auth_method === 'none') && !REGISTERED_CLIENT_GRANTS.includes(grantType)) {
    throw new UnauthorizedClient(`A self-registered client may use only the ${REGISTERED_CLIENT_GRANTS.join(' and ')} grants.`);
  }
  if (!clientRegisteredGrant(client, grantType)) throw new UnauthorizedClient(`The client did not register the ${grantType} grant type.`);
}
