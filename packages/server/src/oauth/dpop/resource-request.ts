import type { ServerContext } from '../../context.ts';
import type { AccessTokenClaims } from '../access-token.ts';
import { dpopChallenge, InvalidToken, type OAuthError } from '../errors.ts';
import { DPOP_SIGNING_ALGORITHMS } from './algorithms.ts';
import { verifyDpopProof } from './proof.ts';

/** An access token and the authorization scheme it was presented with. */
export interface PresentedToken {
  scheme: 'Bearer' | 'DPoP';
  token: string;
}

/** The parts of a resource request that a DPoP proof covers. */
export interface ProofContext {
  /** The DPoP header field as Node parsed it. */
  proof: string | string[] | undefined;
  method: string;
  /** The request URL as the client addressed it, under the issuer's public origin. */
  url: string;
}

/**
 * Returns the token of an `Authorization: Bearer` (RFC 6750 §2.1) or `Authorization: DPoP`
 * (RFC 9449 §7.1) field, or undefined when the field is absent or uses another scheme.
 */
export function presentedToken(authorization: string | undefined): PresentedToken | undefined {
  if (authorization === undefined) return undefined;
  const match = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  return { scheme: match[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', token: match[2] };
}

/** Returns the `cnf.jkt` of a DPoP-bound access token (RFC 9449 §6.1), or undefined for a bearer token. */
export function boundJktOf(claims: AccessTokenClaims): string | undefined {
  const cnf: unknown = claims.cnf;
  if (typeof cnf !== 'object' || cnf === null) return undefined;
  const jkt = (cnf as { jkt?: unknown }).jkt;
  return typeof jkt === 'string' ? jkt : undefined;
}

/**
 * Enforces DPoP sender-constraining where Mandate acts as a resource server, at the gateway and
 * at userinfo (RFC 9449 §7). A token with `cnf.jkt` is accepted only under the `DPoP` scheme
 * with a proof by that key for this request, and the `DPoP` scheme only with such a token.
 * Throws InvalidToken with a `DPoP` challenge for the wrong scheme, and InvalidDpopProof or
 * UseDpopNonce when the proof fails a check of RFC 9449 §4.3.
 */
export async function verifyDpopResourceRequest(ctx: ServerContext, presented: PresentedToken, claims: AccessTokenClaims, request: ProofContext): Promise<void> {
  const boundJkt = boundJktOf(claims);

  // RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is rejected, or anyone who
  // copied the token could use it without the private key.
  if (boundJkt !== undefined && presented.scheme === 'Bearer') {
    const description = 'The access token is bound to a DPoP key; send it as "Authorization: DPoP <token>" with a DPoP proof.';
    throw new InvalidToken(description, { headers: { 'www-authenticate': dpopChallenge('invalid_token', description) } });
  }
  if (presented.scheme === 'Bearer') return;

  // RFC 9449 §7.1: the DPoP scheme carries only DPoP-bound tokens.
  if (boundJkt === undefined) {
    const description = 'The access token is not bound to a DPoP key; send it as "Authorization: Bearer <token>".';
    throw new InvalidToken(description, { headers: { 'www-authenticate': dpopChallenge('invalid_token', description) } });
  }

  // RFC 9449 §7.1: the proof passes every check of §4.3, including `ath` and `cnf.jkt` (step 12).
  await verifyDpopProof(ctx, { header: request.proof, method: request.method, url: request.url, site: 'resource', accessToken: presented.token, boundJkt });
}

/**
 * Replaces the `Bearer` challenge of a denial with a `DPoP` challenge (RFC 9449 §7.1), for
 * requests that used the DPoP scheme. Challenges that are already `DPoP` stay as they are.
 */
export function useDpopChallenge(error: OAuthError): void {
  const challenge = error.headers['www-authenticate'];
  if (challenge === undefined || !challenge.startsWith('Bearer ')) return;
  error.headers['www-authenticate'] = `DPoP algs="${DPOP_SIGNING_ALGORITHMS.join(' ')}", ${challenge.slice('Bearer '.length)}`;
}
