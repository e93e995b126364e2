import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { GRANTS } from './token-endpoint.ts';
import { DPOP_SIGNING_ALGORITHMS } from './dpop/algorithms.ts';

/** The client authentication methods of /token, /par, /revoke and /introspect (see client-authentication.ts). */
const CLIENT_AUTHENTICATION_METHODS = ['client_secret_basic', 'private_key_jwt'];
const CLIENT_ASSERTION_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'RS256', 'PS256'];

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
    token_endpoint_auth_methods_supported: CLIENT_AUTHENTICATION_METHODS,
    token_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGORITHMS,
    // RFC 9126 §5. The endpoints below authenticate clients exactly as the token endpoint does.
    pushed_authorization_request_endpoint: `${issuer}/par`,
    require_pushed_authorization_requests: false,
    // RFC 8414 §2 (RFC 7009 revocation and RFC 7662 introspection).
    revocation_endpoint: `${issuer}/revoke`,
    revocation_endpoint_auth_methods_supported: CLIENT_AUTHENTICATION_METHODS,
    revocation_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGORITHMS,
    introspection_endpoint: `${issuer}/introspect`,
    introspection_endpoint_auth_methods_supported: CLIENT_AUTHENTICATION_METHODS,
    introspection_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGORITHMS,
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'profile', 'email'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    claims_supported: ['sub', 'name', 'preferred_username', 'email', 'auth_time', 'nonce'],
    authorization_response_iss_parameter_supported: true,
    resource_indicators_supported: true,
    // RFC 9449 §5.1
    dpop_signing_alg_values_supported: [...DPOP_SIGNING_ALGORITHMS],
  };
}

export function registerMetadataRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const metadata = serverMetadata(ctx.config.issuer);
  app.get('/.well-known/oauth-authorization-server', (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(metadata));
  app.get('/.well-known/openid-configuration', (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(metadata));
  app.get('/jwks', (_request, reply) => reply.type('application/jwk-set+json').header('cache-control', 'public, max-age=300').send(ctx.keys.jwks));
}
