import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { GRANTS } from './token-endpoint.ts';

/** RFC 8414 authorization server metadata, also served as OpenID Connect Discovery. */
export function serverMetadata(issuer: string): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    userinfo_endpoint: `${issuer}/userinfo`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: Object.keys(GRANTS),
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['EdDSA', 'Ed25519', 'ES256', 'RS256', 'PS256'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'profile', 'email'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    claims_supported: ['sub', 'name', 'preferred_username', 'email', 'auth_time', 'nonce'],
    authorization_response_iss_parameter_supported: true,
    resource_indicators_supported: true,
  };
}

export function registerMetadataRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const metadata = serverMetadata(ctx.config.issuer);
  app.get('/.well-known/oauth-authorization-server', (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(metadata));
  app.get('/.well-known/openid-configuration', (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(metadata));
  app.get('/jwks', (_request, reply) => reply.type('application/jwk-set+json').header('cache-control', 'public, max-age=300').send(ctx.keys.jwks));
}
