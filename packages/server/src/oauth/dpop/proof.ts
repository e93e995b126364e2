import { createHash } from 'node:crypto';
import { EmbeddedJWK, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, jwtVerify, type JWK, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import type { ServerContext } from '../../context.ts';
import { nowSeconds } from '../../store/ids.ts';
import { InvalidDpopProof, UseDpopNonce, type DpopSite } from '../errors.ts';
import { DPOP_SIGNING_ALGORITHMS } from './algorithms.ts';
import { isValidDpopNonce, issueDpopNonce } from './nonce.ts';
import { rememberDpopProof } from './replay.ts';

/** RFC 9449 §4.2: the media type of DPoP proofs, in the `typ` header. */
export const DPOP_PROOF_TYP = 'dpop+jwt';

/** A proof's `iat` may be at most this old (RFC 9449 §11.1: the acceptance window). */
export const DPOP_PROOF_MAX_AGE_SECONDS = 300;
/** A proof's `iat` may lie at most this far in the future, for clock skew. */
export const DPOP_CLOCK_SKEW_SECONDS = 30;

const MAX_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;

/** JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2). */
const PRIVATE_KEY_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export interface DpopProofRequest {
  /** The DPoP header field as Node parsed it: an array or a comma-joined string when repeated. */
  header: string | string[] | undefined;
  /** The HTTP method of the request. */
  method: string;
  /** The URL the client sent the request to, as the issuer's clients see it. */
  url: string;
  site: DpopSite;
  /** At a resource: the access token presented with the proof, which `ath` must hash. */
  accessToken?: string | undefined;
  /** At a resource: the `cnf.jkt` of that access token. */
  boundJkt?: string | undefined;
}

export interface VerifiedDpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's public key. */
  jkt: string;
  jti: string;
}

/**
 * Runs the checks of RFC 9449 §4.3 on a DPoP proof, then records its `jti` so that the same
 * proof cannot be used twice. Every failure is `invalid_dpop_proof`, except a missing or
 * stale nonce, which is `use_dpop_nonce` with a fresh nonce.
 */
export async function verifyDpopProof(ctx: ServerContext, input: DpopProofRequest): Promise<VerifiedDpopProof> {
  const invalid = (description: string, detail?: string) => new InvalidDpopProof(description, input.site, { detail: detail ?? description });

  // RFC 9449 §4.3 step 1: exactly one DPoP header field. Node joins repeated unknown fields
  // with ", ", and a compact JWT contains no comma.
  const proof = input.header;
  if (proof === undefined || proof === '') throw invalid('The request has no DPoP header. Send a DPoP proof in the DPoP header.');
  if (Array.isArray(proof) || proof.includes(',')) throw invalid('The request must have exactly one DPoP header.');
  if (proof.length > MAX_PROOF_LENGTH) throw invalid(`The DPoP proof is longer than ${MAX_PROOF_LENGTH} characters.`);

  // Step 2: a well-formed JWT.
  let header: ProtectedHeaderParameters;
  let unverified: JWTPayload;
  try {
    header = decodeProtectedHeader(proof);
    unverified = decodeJwt(proof);
  } catch (error) {
    throw invalid('The DPoP proof is not a well-formed JWT.', `DPoP proof does not decode: ${(error as Error).message}`);
  }

  // Step 4: the `typ` header.
  if (header.typ !== DPOP_PROOF_TYP) throw invalid(`The DPoP proof's typ header must be ${DPOP_PROOF_TYP}.`);

  // Step 5: an asymmetric algorithm from the allowlist (never none or HS*).
  if (typeof header.alg !== 'string' || !(DPOP_SIGNING_ALGORITHMS as readonly string[]).includes(header.alg)) {
    throw invalid(`The DPoP proof's alg must be one of ${DPOP_SIGNING_ALGORITHMS.join(', ')}.`);
  }

  // Step 7: the `jwk` header is a public key.
  const jwk = header.jwk;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw invalid('The DPoP proof has no jwk header with its public key.');
  if (PRIVATE_KEY_MEMBERS.some((member) => Object.hasOwn(jwk, member))) throw invalid('The DPoP proof\'s jwk header contains a private key; send only the public key.');

  // Step 3: the required claims (§4.2).
  const claims = requireClaims(unverified, invalid);

  // Step 6: the signature verifies with the key in the `jwk` header.
  try {
    await jwtVerify(proof, EmbeddedJWK, { typ: DPOP_PROOF_TYP, algorithms: [...DPOP_SIGNING_ALGORITHMS] });
  } catch (error) {
    throw invalid('The DPoP proof\'s signature does not verify with its jwk header.', `DPoP proof signature rejected: ${(error as Error).message}`);
  }
  const jkt = await calculateJwkThumbprint(jwk as JWK, 'sha256');

  // Step 8: `htm` is the request's method.
  if (claims.htm !== input.method) throw invalid(`The DPoP proof's htm must be ${input.method}.`);

  // Step 9: `htu` is the request's URL without query and fragment (RFC 9449 §4.3, RFC 3986 §6).
  const expectedUrl = normalizeHtu(input.url);
  const presentedUrl = normalizeHtu(claims.htu);
  if (expectedUrl === undefined || presentedUrl !== expectedUrl) throw invalid(`The DPoP proof's htu must be ${expectedUrl ?? input.url}.`);

  // Step 10: the server's nonce, when one is required or the proof carries one (RFC 9449 §8, §9).
  if (claims.nonce === undefined) {
    if (ctx.config.dpopNoncesRequired) throw new UseDpopNonce('The DPoP proof must carry the nonce from the DPoP-Nonce header.', issueDpopNonce(ctx), input.site);
  } else if (!isValidDpopNonce(ctx, claims.nonce)) {
    throw new UseDpopNonce('The DPoP proof\'s nonce is invalid or expired; use the nonce from the DPoP-Nonce header.', issueDpopNonce(ctx), input.site);
  }

  // Step 11: `iat` lies within the acceptance window.
  const now = nowSeconds();
  if (claims.iat < now - DPOP_PROOF_MAX_AGE_SECONDS || claims.iat > now + DPOP_CLOCK_SKEW_SECONDS) {
    throw invalid('The DPoP proof\'s iat is outside the acceptance window; create a fresh proof.', `DPoP proof iat ${claims.iat}, server time ${now}`);
  }

  // Step 12: at a resource, `ath` hashes the presented access token and the token is bound to this key.
  if (input.accessToken !== undefined) {
    if (claims.ath !== accessTokenHash(input.accessToken)) throw invalid('The DPoP proof\'s ath does not match the access token.');
    if (input.boundJkt !== jkt) throw invalid('The DPoP proof is not signed with the key the access token is bound to.', `proof jkt ${jkt}, token cnf.jkt ${String(input.boundJkt)}`);
  }

  // RFC 9449 §11.1: each proof is accepted once within its window.
  const fresh = await rememberDpopProof(ctx, jkt, claims.jti, claims.iat + DPOP_PROOF_MAX_AGE_SECONDS + DPOP_CLOCK_SKEW_SECONDS);
  if (!fresh) throw invalid('The DPoP proof was already used; create a new proof with a new jti for every request.');

  return { jkt, jti: claims.jti };
}

/** RFC 9449 §4.2: `ath` is the base64url SHA-256 of the ASCII access token. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

interface ProofClaims {
  jti: string;
  htm: string;
  htu: string;
  iat: number;
  ath: string | undefined;
  nonce: string | undefined;
}

function requireClaims(payload: JWTPayload, invalid: (description: string) => InvalidDpopProof): ProofClaims {
  const { jti, htm, htu, iat, ath, nonce } = payload;
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) throw invalid(`The DPoP proof needs a jti claim: a unique string of at most ${MAX_JTI_LENGTH} characters.`);
  if (typeof htm !== 'string') throw invalid('The DPoP proof needs an htm claim with the request method.');
  if (typeof htu !== 'string') throw invalid('The DPoP proof needs an htu claim with the request URL.');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalid('The DPoP proof needs a numeric iat claim.');
  if (ath !== undefined && typeof ath !== 'string') throw invalid('The DPoP proof\'s ath claim must be a string.');
  if (nonce !== undefined && typeof nonce !== 'string') throw invalid('The DPoP proof\'s nonce claim must be a string.');
  return { jti, htm, htu, iat, ath: ath as string | undefined, nonce: nonce as string | undefined };
}

/**
 * Normalizes a URL for the `htu` comparison: drops query and fragment, and applies the
 * syntax-based normalization of RFC 3986 §6.2.2 that WHATWG URL parsing performs (case of
 * scheme and host, default port, dot segments), plus upper-case percent-encoding.
 * Returns undefined for anything that is not an absolute http(s) URL.
 */
export function normalizeHtu(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  url.search = '';
  url.hash = '';
  return url.href.replace(/%[0-9a-f]{2}/gi, (escape) => escape.toUpperCase());
}
