import type { IncomingMessage, ServerResponse } from 'node:http';

import { AccessTokenVerifier } from './access-token-verifier.ts';
import type { AccessTokenClaims, AccessTokenVerifierOptions } from './access-token-verifier.ts';
import { extractBearerToken } from './bearer-token.ts';
import { BearerTokenError, InsufficientScopeError, InvalidTokenError } from './errors.ts';

export interface RequireAccessTokenOptions extends AccessTokenVerifierOptions {
  /** Scopes the token must all carry. A token missing any of them gets 403 insufficient_scope. */
  scopes?: string[];
}

/** A request after requireAccessToken accepted it. */
export type AuthenticatedRequest = IncomingMessage & { auth?: AccessTokenClaims };

/**
 * Connect/Express-style middleware, also callable from a plain node:http handler.
 * On success it sets `req.auth`, calls `next()` when given, and resolves to the
 * claims. On failure it sends the RFC 6750 error response itself, does not call
 * `next`, and resolves to undefined. The promise rejects only if `next` throws.
 */
export type AccessTokenMiddleware = (
  req: AuthenticatedRequest,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => Promise<AccessTokenClaims | undefined>;

/**
 * Creates middleware that accepts only requests with a valid Mandate access
 * token for `audience` in the `Authorization: Bearer` header. The verifier,
 * and with it the discovered JWKS, is shared by every request.
 */
export function requireAccessToken(options: RequireAccessTokenOptions): AccessTokenMiddleware {
  const verifier = new AccessTokenVerifier(options);
  const realm = options.realm ?? options.audience;
  const requiredScopes = [...(options.scopes ?? [])];

  return async (req, res, next) => {
    let claims: AccessTokenClaims;
    try {
      const token = extractBearerToken(req, realm);
      claims = await verifier.verify(token);
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
      sendBearerError(res, bearerError);
      return undefined;
    }

    req.auth = claims;
    next?.();
    return claims;
  };
}

/** Sends `error` as an RFC 6750 response, unless a response was already started. */
export function sendBearerError(res: ServerResponse, error: BearerTokenError): void {
  if (res.headersSent) {
    return;
  }
  const body = JSON.stringify(error.toJSON());
  res.writeHead(error.status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'www-authenticate': error.wwwAuthenticate,
  });
  res.end(body);
}
