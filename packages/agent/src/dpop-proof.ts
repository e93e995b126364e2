import { randomUUID } from 'node:crypto';

import { SignJWT, base64url } from 'jose';

import { describeDpopKey, generateDpopKey, inferDpopAlgorithm } from './dpop-key.ts';
import type { DpopKey } from './dpop-key.ts';

/**
 * Signs the DPoP proofs of one agent (RFC 9449 §4.2) and stores the nonces
 * that servers hand out (RFC 9449 §8, §9), one per origin.
 */
export class DpopProver {
  readonly #createKey: () => Promise<DpopKey>;
  #key: Promise<DpopKey> | undefined;
  readonly #nonces = new Map<string, string>();

  /**
   * `keyPair` is the caller's key. Without one, the key is generated on first
   * use and kept for the life of this prover. A failure to generate it is
   * kept as well, so that every later request fails alike.
   */
  constructor(keyPair: CryptoKeyPair | undefined) {
    if (keyPair === undefined) {
      this.#createKey = generateDpopKey;
    } else {
      const algorithm = inferDpopAlgorithm(keyPair);
      this.#createKey = () => describeDpopKey(keyPair, algorithm);
    }
  }

  key(): Promise<DpopKey> {
    this.#key ??= this.#createKey();
    return this.#key;
  }

  /**
   * Signs a proof for one request. `htu` is `url` without query and fragment
   * (RFC 9449 §4.2). With `accessToken`, the proof carries `ath`, the
   * base64url SHA-256 of the token, as resource servers require (§7.1).
   */
  async createProof(method: string, url: URL, accessToken?: string): Promise<string> {
    const key = await this.key();
    const claims: Record<string, string> = { htm: method, htu: `${url.origin}${url.pathname}` };

    const nonce = this.#nonces.get(url.origin);
    if (nonce !== undefined) claims.nonce = nonce;
    if (accessToken !== undefined) {
      const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(accessToken));
      claims.ath = base64url.encode(new Uint8Array(digest));
    }

    return new SignJWT(claims)
      .setProtectedHeader({ typ: 'dpop+jwt', alg: key.algorithm, jwk: key.publicJwk })
      .setJti(randomUUID())
      .setIssuedAt()
      .sign(key.keyPair.privateKey);
  }

  /**
   * Stores the `DPoP-Nonce` header of a response from `url`'s origin, if it
   * has one, for the next proof to that origin. Returns whether it had one.
   */
  storeNonce(url: URL, response: Response): boolean {
    const nonce = response.headers.get('dpop-nonce');
    if (nonce === null || nonce === '') return false;
    this.#nonces.set(url.origin, nonce);
    return true;
  }
}

/**
 * Returns true for a resource server's request for a nonce: 401 with a DPoP
 * challenge whose error is `use_dpop_nonce` (RFC 9449 §9).
 */
export function isResourceNonceChallenge(response: Response): boolean {
  if (response.status !== 401) return false;
  const challenge = response.headers.get('www-authenticate') ?? '';
  return /(?:^|,)\s*DPoP(?:\s|$)/i.test(challenge) && /(?:^|[\s,])error\s*=\s*"?use_dpop_nonce"?(?:[\s,]|$)/.test(challenge);
}

