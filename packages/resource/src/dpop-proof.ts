import { createHash } from 'node:crypto';

import { EmbeddedJWK, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JWK, JWTPayload, ProtectedHeaderParameters } from 'jose';

import { DpopNonceIssuer } from './dpop-nonce.ts';
import type { DpopNonceOptions } from './dpop-nonce.ts';
import { MemoryDpopReplayCache } from './dpop-replay-cache.ts';
import type { DpopReplayCache } from './dpop-replay-cache.ts';
import { InvalidDpopProofError, UseDpopNonceError } from './errors.ts';

/**
 * Proof algorithms accepted by default: asymmetric only (RFC 9449 §4.3 step 5).
 * `EdDSA` and `Ed25519` both name Ed25519 signatures. This is the list the
 * Mandate authorization server accepts at its token endpoint.
 */
export const DEFAULT_DPOP_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'PS256', 'RS256'] as const;

const DPOP_PROOF_TYP = 'dpop+jwt';
const DEFAULT_MAX_AGE_SECONDS = 300;
const DEFAULT_CLOCK_SKEW_SECONDS = 30;
const MAX_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;

/** JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2). */
const PRIVATE_KEY_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export interface DpopProofVerifierOptions {
  /** Accepted proof `alg` values. Defaults to DEFAULT_DPOP_ALGORITHMS. `none` and HMAC algorithms are rejected. */
  algorithms?: readonly string[];
  /** Maximum age of a proof's `iat`, in seconds. Defaults to 300. */
  maxAgeSeconds?: number;
  /** How far a proof's `iat` may lie in the future, in seconds. Defaults to 30. */
  clockSkewSeconds?: number;
  /**
   * Store of the proofs already accepted. Defaults to a MemoryDpopReplayCache,
   * which only protects a single process.
   */
  replayCache?: DpopReplayCache;
  /**
   * Requires every proof to carry a nonce that this resource server issued
   * (RFC 9449 §9). `true` uses a random secret per process. Pass
   * DpopNonceOptions with a shared `secret` when several processes serve
   * the resource. Defaults to false, which neither issues nor checks nonces.
   */
  requireNonce?: boolean | DpopNonceOptions;
  /** `realm` of the challenge in the errors this verifier throws. */
  realm?: string;
}

/** The request a DPoP proof was presented with. */
export interface DpopProofRequest {
  /** The `DPoP` header as Node parsed it: an array or a comma-joined string when repeated. */
  proof: string | string[] | undefined;
  /** HTTP method of the request. */
  method: string;
  /** Absolute URL the client sent the request to; query and fragment are ignored. */
  url: string;
  /** The access token presented with the proof. */
  accessToken: string;
  /** The `cnf.jkt` claim of that access token. */
  jkt: string;
}

/**
 * Runs the twelve checks of RFC 9449 §4.3 that a resource server makes on a
 * DPoP proof, and records the proof's `jti` so that the proof is accepted
 * only once. A missing or stale nonce, when nonces are required, is a
 * UseDpopNonceError with a fresh nonce. Every other failure is an
 * InvalidDpopProofError. Without `requireNonce`, a proof's `nonce` is ignored.
 */
export class DpopProofVerifier {
  readonly algorithms: readonly string[];
  readonly #maxAgeSeconds: number;
  readonly #clockSkewSeconds: number;
  readonly #replayCache: DpopReplayCache;
  readonly #nonces: DpopNonceIssuer | undefined;
  readonly #realm: string | undefined;

  constructor(options: DpopProofVerifierOptions = {}) {
    const algorithms = options.algorithms ?? DEFAULT_DPOP_ALGORITHMS;
    if (algorithms.length === 0) {
      throw new TypeError('DPoP algorithms must name at least one JWS algorithm');
    }
    const unsafe = algorithms.find((alg) => alg === 'none' || alg.startsWith('HS'));
    if (unsafe !== undefined) {
      throw new TypeError(`DPoP algorithms must contain only asymmetric algorithms, found ${unsafe}`);
    }

    this.algorithms = [...algorithms];
    this.#maxAgeSeconds = options.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS;
    this.#clockSkewSeconds = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
    this.#replayCache = options.replayCache ?? new MemoryDpopReplayCache();
    this.#nonces = createNonceIssuer(options.requireNonce, this.#clockSkewSeconds);
    this.#realm = options.realm;
  }

  /** True when proofs must carry a nonce that this resource server issued. */
  get requiresNonce(): boolean {
    return this.#nonces !== undefined;
  }

  /**
   * Returns a fresh nonce for a `DPoP-Nonce` response header, or undefined
   * when nonces are not required. Sending one with each successful response
   * spares the client a `use_dpop_nonce` round trip (RFC 9449 §9).
   */
  issueNonce(): string | undefined {
    return this.#nonces?.issue();
  }

  /**
   * Verifies the proof of `request`, or throws InvalidDpopProofError or
   * UseDpopNonceError with a description safe to send.
   */
  async verify(request: DpopProofRequest): Promise<void> {
    const invalid = (description: string, cause?: unknown): InvalidDpopProofError =>
      new InvalidDpopProofError(description, { realm: this.#realm, cause });

    // RFC 9449 §4.3 step 1: exactly one DPoP header. Node joins a repeated
    // DPoP header with ", ", and a compact JWT contains no comma.
    const proof = request.proof;
    if (proof === undefined || proof === '') {
      throw invalid('The request has no DPoP header. Send a DPoP proof with a DPoP-bound access token.');
    }
    if (Array.isArray(proof) || proof.includes(',')) {
      throw invalid('The request must have exactly one DPoP header.');
    }
    if (proof.length > MAX_PROOF_LENGTH) {
      throw invalid(`The DPoP proof is longer than ${MAX_PROOF_LENGTH} characters.`);
    }

    // Step 2: a well-formed JWT.
    let header: ProtectedHeaderParameters;
    let unverifiedClaims: JWTPayload;
    try {
      header = decodeProtectedHeader(proof);
      unverifiedClaims = decodeJwt(proof);
    } catch (error) {
      throw invalid('The DPoP proof is not a well-formed JWT.', error);
    }

    // Step 4: the `typ` header.
    if (header.typ !== DPOP_PROOF_TYP) {
      throw invalid(`The DPoP proof's typ header must be ${DPOP_PROOF_TYP}.`);
    }

    // Step 5: an asymmetric algorithm from the allowlist.
    if (typeof header.alg !== 'string' || !this.algorithms.includes(header.alg)) {
      throw invalid(`The DPoP proof's alg must be one of ${this.algorithms.join(', ')}.`);
    }

    // Step 7: the `jwk` header is a public key.
    const jwk = header.jwk;
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
      throw invalid('The DPoP proof has no jwk header with its public key.');
    }
    if (PRIVATE_KEY_MEMBERS.some((member) => Object.hasOwn(jwk, member))) {
      throw invalid("The DPoP proof's jwk header contains a private key; send only the public key.");
    }

    // Step 3: the claims required by RFC 9449 §4.2, plus `ath` at a resource server (§7).
    const claims = readProofClaims(unverifiedClaims, invalid);

    // Step 6: the signature verifies with the key in the `jwk` header.
    try {
      await jwtVerify(proof, EmbeddedJWK, { typ: DPOP_PROOF_TYP, algorithms: [...this.algorithms] });
    } catch (error) {
      throw invalid("The DPoP proof's signature does not verify with its jwk header.", error);
    }

    // Step 8: `htm` is the request's method.
    if (claims.htm !== request.method) {
      throw invalid(`The DPoP proof's htm must be ${request.method}.`);
    }

    // Step 9: `htu` is the request's URL without query and fragment.
    const expectedHtu = normalizeHtu(request.url);
    if (expectedHtu === undefined || normalizeHtu(claims.htu) !== expectedHtu) {
      throw invalid(`The DPoP proof's htu must be ${expectedHtu ?? 'the request URL'}.`);
    }

    // Step 10: the nonce this server issued, when it requires one (RFC 9449 §9).
    if (this.#nonces !== undefined) {
      if (claims.nonce === undefined) {
        throw new UseDpopNonceError('The DPoP proof must carry the nonce from the DPoP-Nonce header.', this.#nonces.issue(), { realm: this.#realm });
      }
      if (!this.#nonces.isValid(claims.nonce)) {
        throw new UseDpopNonceError("The DPoP proof's nonce is invalid or expired; use the nonce from the DPoP-Nonce header.", this.#nonces.issue(), { realm: this.#realm });
      }
    }

    // Step 11: `iat` lies within the acceptance window.
    const now = Math.floor(Date.now() / 1000);
    if (claims.iat < now - this.#maxAgeSeconds || claims.iat > now + this.#clockSkewSeconds) {
      throw invalid("The DPoP proof's iat is outside the acceptance window; create a fresh proof.");
    }

    // Step 12: `ath` is the hash of the presented access token, and the
    // token's `cnf.jkt` is the RFC 7638 thumbprint of the proof's key.
    if (claims.ath !== accessTokenHash(request.accessToken)) {
      throw invalid("The DPoP proof's ath does not match the access token.");
    }
    const jkt = await calculateJwkThumbprint(jwk as JWK, 'sha256');
    if (jkt !== request.jkt) {
      throw invalid('The DPoP proof is not signed with the key the access token is bound to.');
    }

    // RFC 9449 §11.1: each proof is accepted once within its window. The key
    // includes the thumbprint, so two clients that pick the same jti do not collide.
    const expiresAt = claims.iat + this.#maxAgeSeconds + this.#clockSkewSeconds;
    if (!(await this.#replayCache.remember(`${jkt}:${claims.jti}`, expiresAt))) {
      throw invalid('The DPoP proof was already used; create a new proof with a new jti for every request.');
    }
  }
}

/** RFC 9449 §4.2: `ath` is the base64url-encoded SHA-256 hash of the ASCII access token. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

interface ProofClaims {
  jti: string;
  htm: string;
  htu: string;
  iat: number;
  ath: string;
  nonce: string | undefined;
}

function readProofClaims(
  claims: JWTPayload,
  invalid: (description: string) => InvalidDpopProofError,
): ProofClaims {
  const { jti, htm, htu, iat, ath, nonce } = claims;
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) {
    throw invalid(`The DPoP proof needs a jti claim: a unique string of at most ${MAX_JTI_LENGTH} characters.`);
  }
  if (typeof htm !== 'string') {
    throw invalid('The DPoP proof needs an htm claim with the request method.');
  }
  if (typeof htu !== 'string') {
    throw invalid('The DPoP proof needs an htu claim with the request URL.');
  }
  if (typeof iat !== 'number' || !Number.isFinite(iat)) {
    throw invalid('The DPoP proof needs a numeric iat claim.');
  }
  if (typeof ath !== 'string') {
    throw invalid('The DPoP proof needs an ath claim with the hash of the access token.');
  }
  if (nonce !== undefined && typeof nonce !== 'string') {
    throw invalid("The DPoP proof's nonce claim must be a string.");
  }
  return { jti, htm, htu, iat, ath, nonce };
}

function createNonceIssuer(option: boolean | DpopNonceOptions | undefined, clockSkewSeconds: number): DpopNonceIssuer | undefined {
  if (option === undefined || option === false) {
    return undefined;
  }
  return new DpopNonceIssuer(option === true ? {} : option, clockSkewSeconds);
}

/**
 * Normalizes a URL for the `htu` comparison (RFC 9449 §4.3 step 9): drops
 * query and fragment, applies the RFC 3986 §6.2.2 normalization that WHATWG
 * URL parsing performs (case of scheme and host, default port, dot segments)
 * and upper-cases percent-encodings. Returns undefined for anything that is
 * not an absolute http(s) URL.
 */
function normalizeHtu(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return undefined;
  }
  url.search = '';
  url.hash = '';
  return url.href.replace(/%[0-9a-f]{2}/gi, (escape) => escape.toUpperCase());
}
