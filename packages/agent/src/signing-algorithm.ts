import type { CryptoKey, JWK, KeyObject } from 'jose';

/** JWS algorithms the SDK signs client assertions with. */
export type ClientAssertionAlgorithm = 'EdDSA' | 'ES256' | 'RS256';

/** A private key for private_key_jwt: a WebCrypto CryptoKey, a node:crypto KeyObject or a private JWK. */
export type ClientAssertionKey = CryptoKey | KeyObject | JWK;

/**
 * Infers the JWS algorithm from the type of `key`: Ed25519 gives EdDSA,
 * P-256 gives ES256 and RSA gives RS256. Throws a TypeError for any other key,
 * so the caller must then pass `privateKeyAlg`.
 */
export function inferSigningAlgorithm(key: ClientAssertionKey): ClientAssertionAlgorithm {
  const description = describeKey(key);
  switch (description) {
    case 'Ed25519':
      return 'EdDSA';
    case 'P-256':
      return 'ES256';
    case 'RSA':
      return 'RS256';
    default:
      throw new TypeError(
        `Cannot infer the signing algorithm of a ${description} private key; pass privateKeyAlg ('EdDSA', 'ES256' or 'RS256')`,
      );
  }
}

function describeKey(key: ClientAssertionKey): string {
  const fields = key as Record<string, unknown>;

  // WebCrypto CryptoKey: algorithm.name and, for ECDSA, algorithm.namedCurve.
  if (typeof fields.algorithm === 'object' && fields.algorithm !== null) {
    const { name, namedCurve } = fields.algorithm as { name?: string; namedCurve?: string };
    if (name === 'ECDSA') return namedCurve ?? 'ECDSA';
    if (name === 'RSASSA-PKCS1-v1_5') return 'RSA';
    return name ?? 'unknown';
  }

  // node:crypto KeyObject: asymmetricKeyType and asymmetricKeyDetails.namedCurve.
  if (typeof fields.asymmetricKeyType === 'string') {
    const details = fields.asymmetricKeyDetails as { namedCurve?: string } | undefined;
    switch (fields.asymmetricKeyType) {
      case 'ed25519':
        return 'Ed25519';
      case 'ec':
        return details?.namedCurve === 'prime256v1' ? 'P-256' : `EC ${details?.namedCurve ?? ''}`.trim();
      case 'rsa':
        return 'RSA';
      default:
        return fields.asymmetricKeyType;
    }
  }

  // JWK: kty and crv.
  if (typeof fields.kty === 'string') {
    if (fields.kty === 'RSA') return 'RSA';
    return typeof fields.crv === 'string' ? fields.crv : fields.kty;
  }
  return 'unknown';
}
