export { AccessTokenVerifier } from './access-token-verifier.ts';
export type { AccessTokenClaims, AccessTokenVerifierOptions } from './access-token-verifier.ts';
export { fetchAuthorizationServerMetadata, metadataUrlForIssuer } from './authorization-server-metadata.ts';
export type { AuthorizationServerMetadata } from './authorization-server-metadata.ts';
export { extractBearerToken } from './bearer-token.ts';
export {
  BearerTokenError,
  InsufficientScopeError,
  InvalidRequestError,
  InvalidTokenError,
  MissingTokenError,
} from './errors.ts';
export { requireAccessToken, sendBearerError } from './middleware.ts';
export type { AccessTokenMiddleware, AuthenticatedRequest, RequireAccessTokenOptions } from './middleware.ts';
