export { AccessTokenVerifier } from './access-token-verifier.ts';
export type { AccessTokenClaims, AccessTokenVerifierOptions } from './access-token-verifier.ts';
export { extractAccessTokenCredentials } from './access-token-credentials.ts';
export type { AccessTokenCredentials } from './access-token-credentials.ts';
export { fetchAuthorizationServerMetadata, metadataUrlForIssuer } from './authorization-server-metadata.ts';
export type { AuthorizationServerMetadata } from './authorization-server-metadata.ts';
export { extractBearerToken } from './bearer-token.ts';
export { DEFAULT_DPOP_ALGORITHMS, DpopProofVerifier, accessTokenHash } from './dpop-proof.ts';
export type { DpopProofRequest, DpopProofVerifierOptions } from './dpop-proof.ts';
export { MemoryDpopReplayCache } from './dpop-replay-cache.ts';
export type { DpopReplayCache } from './dpop-replay-cache.ts';
export {
  BearerTokenError,
  InsufficientScopeError,
  InvalidDpopProofError,
  InvalidRequestError,
  InvalidTokenError,
  MissingTokenError,
} from './errors.ts';
export type { ChallengeOptions } from './errors.ts';
export { requireAccessToken, sendBearerError } from './middleware.ts';
export type { AccessTokenMiddleware, AuthenticatedRequest, RequireAccessTokenOptions } from './middleware.ts';
export {
  PROTECTED_RESOURCE_METADATA_PATH,
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  serveProtectedResourceMetadata,
} from './protected-resource-metadata.ts';
export type { ProtectedResourceMetadata, ProtectedResourceMetadataOptions } from './protected-resource-metadata.ts';
