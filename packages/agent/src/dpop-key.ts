import { calculateJwkThumbprint, exportJWK } from 'jose';
import type { JWK } from 'jose';

/** JWS algorithms the SDK signs DPoP proofs with. Mandate accepts each of them. */
export type DpopAlgorithm = 'EdDSA' | 'ES256' | 'ES384' | 'PS256' | 'RS256';

/** The key an agent proves possession of with every DPoP proof (RFC 9449 §4). */
export interface DpopKey {
  /** WebCrypto key pair. A key the SDK generates has a non-extractable private key. */
  keyPair: CryptoKeyPair;
  algorithm: DpopAlgorithm;
  /** The public key as a JWK, sent in the `jwk` header of every proof. */
  publicJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint of the public key: the `cnf.jkt` of bound tokens and the `dpop_jkt` authorization request parameter. */
  thumbprint: string;
}

/**
 * Generates an Ed25519 key pair whose private key WebCrypto will not export,
 * so it cannot leave the process even through the SDK's own code.
 */
export async function generateDpopKey(): Promise<DpopKey> {
  const keyPair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
  return describeDpopKey(keyPair, 'EdDSA');
}

/** Exports the public JWK of `keyPair` and computes its thumbprint. Only the public key is exported. */
export async function describeDpopKey(keyPair: CryptoKeyPair, algorithm: DpopAlgorithm): Promise<DpopKey> {
  const { kty, crv, x, y, n, e } = await exportJWK(keyPair.publicKey);
  // RFC 9449 §4.2: the jwk header contains the public key only, so copy just the public members.
  const publicJwk: JWK = { kty };
  if (crv !== undefined) publicJwk.crv = crv;
  if (x !== undefined) publicJwk.x = x;
  if (y !== undefined) publicJwk.y = y;
  if (n !== undefined) publicJwk.n = n;
  if (e !== undefined) publicJwk.e = e;

  return { keyPair, algorithm, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

/**
 * Infers the proof algorithm of a caller's WebCrypto key pair from its
 * private key. Throws a TypeError for anything that is not a private/public
 * pair of a type Mandate accepts in DPoP proofs.
 */
export function inferDpopAlgorithm(keyPair: CryptoKeyPair): DpopAlgorithm {
  const { privateKey, publicKey } = keyPair;
  if (privateKey?.type !== 'private' || publicKey?.type !== 'public') {
    throw new TypeError('dpop must be true or a WebCrypto CryptoKeyPair with a private and a public key');
  }
  if (!privateKey.usages.includes('sign')) {
    throw new TypeError('The DPoP private key must allow the "sign" usage');
  }

  const algorithm = privateKey.algorithm as { name: string; namedCurve?: string; hash?: { name: string } };
  const parameters = algorithm.namedCurve ?? algorithm.hash?.name;
  if (algorithm.name === 'Ed25519') return 'EdDSA';
  if (algorithm.name === 'ECDSA' && algorithm.namedCurve === 'P-256') return 'ES256';
  if (algorithm.name === 'ECDSA' && algorithm.namedCurve === 'P-384') return 'ES384';
  if (algorithm.name === 'RSA-PSS' && algorithm.hash?.name === 'SHA-256') return 'PS256';
  if (algorithm.name === 'RSASSA-PKCS1-v1_5' && algorithm.hash?.name === 'SHA-256') return 'RS256';
  const keyName = parameters === undefined ? algorithm.name : `${algorithm.name} ${parameters}`;
  throw new TypeError(
    `A ${keyName} key cannot sign DPoP proofs for Mandate. Use Ed25519, ECDSA P-256 or P-384, or RSA with SHA-256.`,
  );
}
