import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Settings of the server-provided DPoP nonces (RFC 9449 §9) that a resource server requires. */
export interface DpopNonceOptions {
  /**
   * HMAC key of at least 32 bytes. A string is used as its UTF-8 bytes.
   * Defaults to 32 random bytes per process, so a nonce is accepted only by
   * the process that issued it. Give every process behind one URL the same
   * secret.
   */
  secret?: string | Uint8Array;
  /** How long a nonce stays valid after it was issued, in seconds. Defaults to 300. */
  lifetimeSeconds?: number;
}

const DEFAULT_LIFETIME_SECONDS = 300;
const MIN_SECRET_BYTES = 32;
const NONCE_FORMAT = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/**
 * Issues and checks DPoP nonces without storing them: a nonce is its issue
 * time and an HMAC-SHA-256 of that time, so it is valid when the HMAC
 * matches and it is not older than `lifetimeSeconds`. A nonce is accepted
 * again and again until it expires, so it limits how far ahead a client can
 * sign proofs. The replay cache is what rejects a reused proof.
 */
export class DpopNonceIssuer {
  readonly #secret: Buffer;
  readonly #lifetimeSeconds: number;
  readonly #clockSkewSeconds: number;

  /** `clockSkewSeconds` is how far in the future an issue time may lie, for processes whose clocks differ. */
  constructor(options: DpopNonceOptions = {}, clockSkewSeconds = 0) {
    const secret = typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : Buffer.from(options.secret ?? randomBytes(MIN_SECRET_BYTES));
    if (secret.length < MIN_SECRET_BYTES) {
      throw new TypeError(`The DPoP nonce secret must be at least ${MIN_SECRET_BYTES} bytes, got ${secret.length}`);
    }
    const lifetimeSeconds = options.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS;
    if (!Number.isInteger(lifetimeSeconds) || lifetimeSeconds < 1) {
      throw new TypeError(`The DPoP nonce lifetimeSeconds must be a positive integer, got ${String(lifetimeSeconds)}`);
    }

    this.#secret = secret;
    this.#lifetimeSeconds = lifetimeSeconds;
    this.#clockSkewSeconds = clockSkewSeconds;
  }

  /** Returns a new nonce for the `DPoP-Nonce` response header. */
  issue(): string {
    const issuedAt = String(Math.floor(Date.now() / 1000));
    return `${issuedAt}.${this.#mac(issuedAt).toString('base64url')}`;
  }

  /** Returns true when this issuer, or one with the same secret, issued `nonce` and it has not expired. */
  isValid(nonce: string): boolean {
    const match = NONCE_FORMAT.exec(nonce);
    if (match?.[1] === undefined || match[2] === undefined) {
      return false;
    }

    const expected = this.#mac(match[1]);
    const presented = Buffer.from(match[2], 'base64url');
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      return false;
    }

    const age = Math.floor(Date.now() / 1000) - Number(match[1]);
    return age >= -this.#clockSkewSeconds && age <= this.#lifetimeSeconds;
  }

  #mac(issuedAt: string): Buffer {
    return createHmac('sha256', this.#secret).update(`dpop-nonce.${issuedAt}`).digest();
  }
}
