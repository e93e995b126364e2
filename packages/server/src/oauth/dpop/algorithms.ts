/**
 * Signature algorithms accepted in DPoP proofs: asymmetric only, so `none` and the HMAC
 * algorithms can never verify (RFC 9449 §4.3 step 5). `EdDSA` and `Ed25519` (RFC 9864) both
 * name Ed25519 signatures.
 */
export const DPOP_SIGNING_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'PS256', 'RS256'] as const;
