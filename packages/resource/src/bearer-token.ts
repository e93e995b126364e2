import type { IncomingMessage } from 'node:http';

import { hasAccessTokenQueryParameter } from './access-token-credentials.ts';
import { InvalidRequestError, MissingTokenError } from './errors.ts';

// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token, where
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const BEARER_CREDENTIALS = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const BEARER_SCHEME = /^Bearer(?: |$)/i;

/**
 * Extracts the access token from the `Authorization: Bearer` header of `request`.
 * The other RFC 6750 methods are not supported: a token in the `access_token`
 * query parameter is rejected with invalid_request, because URLs end up in
 * logs and Referer headers (RFC 6750 §5.3). A form-body token is not read.
 *
 * Throws MissingTokenError when there is no Bearer credential, and
 * InvalidRequestError when the header or query string is malformed.
 */
export function extractBearerToken(request: IncomingMessage, realm: string | undefined): string {
  if (hasAccessTokenQueryParameter(request.url)) {
    throw new InvalidRequestError(
      'Send the access token in the Authorization: Bearer header, not in the query string.',
      { realm },
    );
  }

  const header = request.headers.authorization;
  if (header === undefined || !BEARER_SCHEME.test(header)) {
    // No credentials, or credentials for another scheme such as Basic.
    throw new MissingTokenError({ realm });
  }

  const match = BEARER_CREDENTIALS.exec(header);
  if (match === null) {
    throw new InvalidRequestError('The Authorization header is not a valid Bearer credential.', { realm });
  }
  return match[1] as string;
}
