import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { createClient, newClientId } from '../agents/clients.ts';
import { OAuthError } from '../oauth/errors.ts';
import { parseClientMetadata } from './client-metadata.ts';
import { registrationPolicy } from './policy.ts';
import { registeredClientName } from './registered-client.ts';

/**
 * RFC 7591 §3: dynamic client registration, open only when the administrator allows it. The new
 * client is of kind `registered`: it can do nothing until an administrator makes it an agent and
 * gives it roles, so registering grants no access by itself.
 */
export function registerDynamicRegistrationRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/register', { config: { rateLimit: { max: ctx.config.rateLimitPerMinute, timeWindow: '1 minute' } } }, async (request, reply) => {
    const policy = await registrationPolicy(ctx);
    if (!policy.dynamicRegistration) throw new OAuthError('access_denied', 403, 'Dynamic client registration is turned off on this server.');
    const metadata = parseClientMetadata(request.body, 'dynamic');

    const clientId = newClientId('registered');
    const { client, clientSecret } = await ctx.db.transaction().execute(async (trx) => {
      const created = await createClient(
        { db: trx, tenantId: ctx.tenantId },
        {
          kind: 'registered',
          clientId,
          name: registeredClientName(metadata.clientName, clientId),
          jwks: metadata.jwks,
          publicClient: metadata.authMethod === 'none',
          redirectUris: metadata.redirectUris,
          registration: { origin: 'dynamic' },
          grantTypes: metadata.grantTypes,
          postLogoutRedirectUris: metadata.postLogoutRedirectUris,
        },
      );
      await ctx.audit(
        { event: 'client.registered', agent: created.client.client_id, target: { registration: 'dynamic', auth_method: created.client.token_endpoint_auth_method, redirect_uris: metadata.redirectUris }, outcome: { result: 'registered' } },
        trx,
      );
      return created;
    });
    request.log.info({ agent: client.client_id }, 'client registered itself');

    // RFC 7591 §3.2.1: the client information, with the metadata as registered.
    const response: Record<string, unknown> = {
      client_id: client.client_id,
      client_id_issued_at: Number(client.created_at),
      redirect_uris: metadata.redirectUris,
      token_endpoint_auth_method: client.token_endpoint_auth_method,
      grant_types: metadata.grantTypes,
      response_types: ['code'],
    };
    if (metadata.clientName !== undefined) response.client_name = metadata.clientName;
    if (metadata.postLogoutRedirectUris.length > 0) response.post_logout_redirect_uris = metadata.postLogoutRedirectUris;
    if (metadata.jwks !== undefined) response.jwks = metadata.jwks;
    if (clientSecret !== undefined) {
      response.client_secret = clientSecret;
      response.client_secret_expires_at = 0;
    }
    return reply.code(201).headers({ 'cache-control': 'no-store', pragma: 'no-cache' }).send(response);
  });
}
