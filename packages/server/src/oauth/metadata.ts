import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ServerContext } from '../context.ts';
import { GRANTS } from './token-endpoint.ts';
import { DPOP_SIGNING_ALGORITHMS } from './dpop/algorithms.ts';
import { AUTHORIZATION_DETAILS_TYPES } from './ciba/authorization-details.ts';
import { BACKCHANNEL_AUTHENTICATION_PATH } from './ciba/backchannel-endpoint.ts';
import { registrationPolicy, type RegistrationPolicy } from '../registration/policy.ts';

/** The client authentication methods of /token, /par, /revoke and /introspect (see client-authentication.ts). */
const CLIENT_AUTHENTICATION_METHODS = ['client_secret_basic', 'private_key_jwt'];
const CLIENT_ASSERTION_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'RS256', 'PS256'];

/**
 * RFC 8414 authorization server metadata, also served as OpenID Connect Discovery. What clients may
 * do by themselves follows the administrator's registration policy: the registration endpoint
 * (RFC 7591 §3), URL client_ids (`client_id_metadata_document_supported` of the client ID metadata document draft), and with either, public
 * clients (`none`).
 */
export function serverMetadata(issuer: string, policy?: RegistrationPolicy): Record<string, unknown> {
  const publicClients = policy !== undefined && (policy.dynamicRegistration || policy.metadataDocuments);
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    userinfo_endpoint: `${issuer}/userinfo`,
    end_session_endpoint: `${issuer}/logout`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: Object.keys(GRANTS),
    token_endpoint_auth_methods_supported: publicClients ? [...CLIENT_AUTHENTICATION_METHODS, 'none'] : CLIENT_AUTHENTICATION_METHODS,
    ...(policy?.dynamicRegistration === true ? { registration_endpoint: `${issuer}/register` } : {}),
    ...(policy?.metadataDocuments === true ? { client_id_metadata_document_supported: true } : {}),
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
    // CIBA Core 1.0 §4: no push mode, no signed requests and no user codes.
    backchannel_authentication_endpoint: `${issuer}${BACKCHANNEL_AUTHENTICATION_PATH}`,
    backchannel_token_delivery_modes_supported: ['poll', 'ping'],
    backchannel_user_code_parameter_supported: false,
    // RFC 9396 §10
    authorization_details_types_supported: AUTHORIZATION_DETAILS_TYPES,
  };
}

export function registerMetadataRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const sendMetadata = async (_request: unknown, reply: FastifyReply) => reply.header('cache-control', 'public, max-age=300').send(serverMetadata(ctx.config.issuer, await registrationPolicy(ctx)));
  app.get('/.well-known/oauth-authorization-server', sendMetadata);
  app.get('/.well-known/openid-configuration', sendMetadata);
  app.get('/jwks', (_request, reply) => reply.type('application/jwk-set+json').header('cache-control', 'public, max-age=300').send(ctx.keys.jwks));
}
