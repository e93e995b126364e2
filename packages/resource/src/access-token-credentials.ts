import type { IncomingMessage } from 'node:http';

import { InvalidRequestError, MissingTokenError } from './errors.ts';

/** An access token and the authentication scheme it was sent with. */
export interface AccessTokenCredentials {
  scheme: 'Bearer' | 'DPoP';
  token: string;
}

// RFC 6750 §2.1 and RFC 9449 §7.1: credentials = scheme 1*SP token68, where
// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const CREDENTIALS = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i;
const SCHEME = /^(Bearer|DPoP)(?: |$)/i;

/**
 * Extracts the access token from an `Authorization` header with the `Bearer`
 * or the `DPoP` scheme (compared case-insensitively). A token in the
 * `access_token` query parameter is rejected with invalid_request, because
 * URLs end up in logs and Referer headers (RFC 6750 §5.3).
 *
 * Throws MissingTokenError when there are no credentials for either scheme,
 * and InvalidRequestError when the header or query string is malformed.
 */
export function extractAccessTokenCredentials(
  request: IncomingMessage,
  realm: string | undefined,
): AccessTokenCredentials {
  if (hasAccessTokenQueryParameter(request.url)) {
    throw new InvalidRequestError(
      'Send the access token in the Authorization header, not in the query string.',
      { realm },
    );
  }

  const header = request.headers.authorization;
  if (header === undefined || !SCHEME.test(header)) {
    throw new MissingTokenError({ realm });
  }

  const match = CREDENTIALS.exec(header);
  if (match === null) {
    throw new InvalidRequestError('The Authorization header is not a valid Bearer or DPoP credential.', { realm });
  }
  const scheme = (match[1] as string).toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
  return { scheme, token: match[2] as string };
}

/** Reports whether the request target carries an `access_token` query parameter. */
export function hasAccessTokenQueryParameter(requestTarget: string | undefined): boolean {
  if (requestTarget === undefined) {
    return false;
  }
  const queryStart = requestTarget.indexOf('?');
  if (queryStart === -1) {
    return false;
  }
  return new URLSearchParams(requestTarget.slice(queryStart + 1)).has('access_token');
}
