import type { IncomingMessage, ServerResponse } from 'node:http';

import { extractAccessTokenCredentials } from './access-token-credentials.ts';
import { AccessTokenVerifier } from './access-token-verifier.ts';
import type { AccessTokenClaims, AccessTokenVerifierOptions } from './access-token-verifier.ts';
import { DpopProofVerifier } from './dpop-proof.ts';
import type { DpopProofVerifierOptions } from './dpop-proof.ts';
import { BearerTokenError, InsufficientScopeError, InvalidTokenError, MissingTokenError, UseDpopNonceError } from './errors.ts';
import type { ChallengeOptions } from './errors.ts';
import { parseSecureUrl } from './secure-url.ts';

export interface RequireAccessTokenOptions extends AccessTokenVerifierOptions {
  /** Scopes the token must all carry. A token missing any of them gets 403 insufficient_scope. */
  scopes?: string[];
  /**
   * DPoP (RFC 9449) settings, or false to accept only Bearer tokens. DPoP is
   * on by default: a DPoP-bound token must then come with the `DPoP` scheme
   * and a valid proof. The default replay cache lives in this process only.
   * With `requireNonce`, proofs must also carry a nonce that this server
   * issued, and each accepted DPoP request gets a fresh `DPoP-Nonce` header.
   */
  dpop?: false | Omit<DpopProofVerifierOptions, 'realm'>;
  /**
   * Public base URL that the request path is appended to, to form the URL
   * the client called, which a DPoP proof's `htu` must match. Set it when a
   * proxy changes the scheme, host or port. Defaults to the origin of
   * `audience`. The path comes from `req.originalUrl` (Express) or `req.url`.
   */
  publicUrl?: string;
  /**
   * URL of this resource's RFC 9728 metadata document. When set, every 401
   * and 403 challenge carries it as `resource_metadata` (RFC 9728 §5.1), as
   * MCP clients expect. See protectedResourceMetadataUrl.
   */
  resourceMetadataUrl?: string;
}

/** A request after requireAccessToken accepted it. */
export type AuthenticatedRequest = IncomingMessage & { auth?: AccessTokenClaims; originalUrl?: string };

/**
 * Connect/Express-style middleware, also callable from a plain node:http handler.
 * On success it sets `req.auth`, calls `next()` when given, and resolves to the
 * claims. On failure it sends the RFC 6750 or RFC 9449 error response itself,
 * does not call `next`, and resolves to undefined. The promise rejects only if
 * `next` throws.
 */
export type AccessTokenMiddleware = (
  req: AuthenticatedRequest,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => Promise<AccessTokenClaims | undefined>;

/**
 * Creates middleware that accepts only requests with a valid Mandate access
 * token for `audience` in the `Authorization` header, with the `Bearer`
 * scheme or, for DPoP-bound tokens, the `DPoP` scheme and a proof. The
 * verifiers, and with them the discovered JWKS and the replay cache, are
 * shared by every request.
 */
export function requireAccessToken(options: RequireAccessTokenOptions): AccessTokenMiddleware {
  const verifier = new AccessTokenVerifier(options);
  const realm = options.realm ?? options.audience;
  const requiredScopes = [...(options.scopes ?? [])];
  const dpopVerifier = options.dpop === false ? undefined : new DpopProofVerifier({ ...options.dpop, realm });
  const publicBase = dpopVerifier === undefined ? '' : publicBaseUrl(options);
  const resourceMetadataUrl =
    options.resourceMetadataUrl === undefined
      ? undefined
      : parseSecureUrl(options.resourceMetadataUrl, 'resourceMetadataUrl').href;

  return async (req, res, next) => {
    let scheme: 'Bearer' | 'DPoP' = 'Bearer';
    // The scheme of the challenge: the request's scheme, except where a rule below names another.
    let challengeScheme: 'Bearer' | 'DPoP' = 'Bearer';
    let claims: AccessTokenClaims;
    try {
      const credentials = extractAccessTokenCredentials(req, realm);
      scheme = credentials.scheme;
      challengeScheme = scheme;
      if (scheme === 'DPoP' && dpopVerifier === undefined) {
        throw new MissingTokenError({ realm });
      }

      claims = await verifier.verify(credentials.token);

      if (claims.cnf === undefined && scheme === 'DPoP') {
        // RFC 9449 §7.1: the DPoP scheme carries only DPoP-bound tokens.
        throw new InvalidTokenError('The access token is not DPoP-bound; send it with the Bearer scheme.', { realm });
      }
      if (claims.cnf !== undefined && scheme === 'Bearer') {
        // RFC 9449 §7.2: a DPoP-bound token sent as a Bearer token is rejected,
        // or anyone who copied it could use it without the private key. The
        // challenge then names the DPoP scheme and its algs (RFC 9449 §7.1),
        // unless this server accepts no DPoP proofs.
        if (dpopVerifier !== undefined) {
          challengeScheme = 'DPoP';
        }
        throw new InvalidTokenError('The access token is DPoP-bound; send it with the DPoP scheme and a DPoP proof.', { realm });
      }
      if (claims.cnf !== undefined && dpopVerifier !== undefined) {
        await dpopVerifier.verify({
          proof: req.headers.dpop,
          method: req.method ?? '',
          url: publicBase + (req.originalUrl ?? req.url ?? '/'),
          accessToken: credentials.token,
          jkt: claims.cnf.jkt,
        });
      }

      const missing = requiredScopes.filter((scope) => !claims.scopes.includes(scope));
      if (missing.length > 0) {
        // The challenge names every scope the request needs, not only the
        // missing ones, so the client can request them all at once.
        throw new InsufficientScopeError(requiredScopes, { realm });
      }
    } catch (error) {
      const bearerError =
        error instanceof BearerTokenError
          ? error
          : new InvalidTokenError('The access token is invalid.', { realm, cause: error });
      sendBearerError(res, bearerError, {
        scheme: challengeScheme,
        dpopAlgorithms: dpopVerifier?.algorithms,
        resourceMetadataUrl,
        scopes: requiredScopes,
      });
      return undefined;
    }

    // RFC 9449 §9: a fresh nonce with each accepted request spares the client
    // a use_dpop_nonce round trip once the current nonce expires.
    const nonce = scheme === 'DPoP' ? dpopVerifier?.issueNonce() : undefined;
    if (nonce !== undefined && !res.headersSent) {
      res.setHeader('dpop-nonce', nonce);
    }

    req.auth = claims;
    next?.();
    return claims;
  };
}

/**
 * Sends `error` as an RFC 6750 or RFC 9449 response, unless a response was
 * already started. A request without credentials gets a Bearer challenge and,
 * when `challenge.dpopAlgorithms` is given, a DPoP challenge as well
 * (RFC 9449 §7.1), so the client can pick either scheme. A UseDpopNonceError
 * also sends its nonce in the `DPoP-Nonce` header (RFC 9449 §9).
 */
export function sendBearerError(res: ServerResponse, error: BearerTokenError, challenge: ChallengeOptions = {}): void {
  if (res.headersSent) {
    return;
  }

  let wwwAuthenticate: string | string[];
  if (error instanceof MissingTokenError && challenge.dpopAlgorithms !== undefined) {
    wwwAuthenticate = [
      error.challenge({ ...challenge, scheme: 'Bearer' }),
      error.challenge({ ...challenge, scheme: 'DPoP' }),
    ];
  } else {
    wwwAuthenticate = error.challenge(challenge);
  }

  const headers: Record<string, string | string[]> = {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'www-authenticate': wwwAuthenticate,
  };
  if (error instanceof UseDpopNonceError) {
    headers['dpop-nonce'] = error.nonce;
  }

  const body = JSON.stringify(error.toJSON());
  res.writeHead(error.status, headers);
  res.end(body);
}

/**
 * Returns the prefix that a request path is appended to: the origin and path
 * of `options.publicUrl` without a trailing slash, or the origin of `audience`.
 */
function publicBaseUrl(options: RequireAccessTokenOptions): string {
  const value = options.publicUrl ?? options.audience;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`publicUrl is not an absolute URL: ${value}; set publicUrl when audience is not an http(s) URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`publicUrl must be an http(s) URL, got ${value}; set publicUrl when audience is not an http(s) URL`);
  }
  if (options.publicUrl === undefined) {
    return url.origin;
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}
