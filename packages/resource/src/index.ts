export { AccessTokenVerifier } from './access-token-verifier.ts';
export type { AccessTokenClaims, AccessTokenVerifierOptions } from './access-token-verifier.ts';
export { extractAccessTokenCredentials } from './access-token-credentials.ts';
export type { AccessTokenCredentials } from './access-token-credentials.ts';
export { fetchAuthorizationServerMetadata, metadataUrlForIssuer } from './authorization-server-metadata.ts';
export type { AuthorizationServerMetadata } from './authorization-server-metadata.ts';
export { extractBearerToken } from './bearer-token.ts';
export { DEFAULT_DPOP_ALGORITHMS, DpopProofVerifier, accessTokenHash } from './dpop-proof.ts';
export type { DpopProofRequest, DpopProofVerifierOptions } from './dpop-proof.ts';
export { DpopNonceIssuer } from './dpop-nonce.ts';
export type { DpopNonceOptions } from './dpop-nonce.ts';
export { MemoryDpopReplayCache } from './dpop-replay-cache.ts';
export type { DpopReplayCache } from './dpop-replay-cache.ts';
export {
  BearerTokenError,
  InsufficientScopeError,
  InvalidDpopProofError,
  InvalidRequestError,
  InvalidTokenError,
  MissingTokenError,
  UseDpopNonceError,
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
export { evaluate } from './access-evaluation.ts';
export type { AccessEvaluationCall, AccessEvaluationOptions, AuthorizationDecision } from './access-evaluation.ts';
export { AccessDeniedError, ActionNotGrantedError, ApprovalRequiredError } from './authorization-errors.ts';
export { requireAuthorization } from './authorization-middleware.ts';
export type { AuthorizationMiddleware, AuthorizedRequest, RequireAuthorizationOptions } from './authorization-middleware.ts';
export { EVALUATION_SCOPE, pdpClientCredentials } from './pdp-credentials.ts';
export type { PdpClientCredentialsOptions, PdpCredentials } from './pdp-credentials.ts';
