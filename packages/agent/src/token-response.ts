import { InvalidResponseError, TokenEndpointError } from './errors.ts';

/** RFC 6749 §7.1 access token type: `Bearer` (RFC 6750) or `DPoP` (RFC 9449 §5). */
export type TokenType = 'Bearer' | 'DPoP';

/** A successful token endpoint response (RFC 6749 §5.1, RFC 8693 §2.2.1). */
export interface TokenResponse {
  accessToken: string;
  /**
   * `DPoP` when the agent uses DPoP, else `Bearer`. The SDK rejects a response
   * of the other type, so a DPoP agent never receives an unbound token.
   */
  tokenType: TokenType;
  /** Lifetime of the access token in seconds, as sent by the server. */
  expiresIn: number;
  /** When the access token expires, computed from `expiresIn` and the local clock at receipt. */
  expiresAt: Date;
  /** Granted scopes, space separated. Falls back to the requested scope when the server leaves it out (RFC 6749 §5.1). */
  scope: string | undefined;
  /** A new refresh token. Mandate rotates them, so store this one and discard the old one. */
  refreshToken?: string;
  /** RFC 8693 token type URI of the issued token, sent for token exchange. */
  issuedTokenType?: string;
}

/**
 * Converts a token endpoint response into a TokenResponse. Throws
 * TokenEndpointError for an error status, with the body's RFC 6749 §5.2 error
 * code or `server_error` when the body has none, and InvalidResponseError
 * for a 200 response that lacks a required member or whose token_type is
 * not `expectedTokenType`.
 */
export async function readTokenResponse(
  response: Response,
  requestedScope: string | undefined,
  expectedTokenType: TokenType,
): Promise<TokenResponse> {
  const body = await readJsonObject(response);

  if (response.status !== 200) {
    const error = typeof body?.error === 'string' ? body.error : 'server_error';
    const description = typeof body?.error_description === 'string' ? body.error_description : undefined;
    throw new TokenEndpointError(error, description, response.status);
  }
  if (body === undefined) {
    throw new InvalidResponseError('Token endpoint response is not a JSON object');
  }

  const { access_token, token_type, expires_in, scope, refresh_token, issued_token_type } = body;
  if (typeof access_token !== 'string' || access_token === '') {
    throw new InvalidResponseError('Token endpoint response has no access_token');
  }
  // RFC 6749 §5.1: token_type is case-insensitive. RFC 9449 §5: a server
  // that bound the token to the proof's key returns token_type DPoP. A Bearer
  // response to a DPoP request means the server ignored the proof, and the
  // token would work for anyone who copies it, so it is rejected.
  if (typeof token_type !== 'string' || token_type.toLowerCase() !== expectedTokenType.toLowerCase()) {
    throw new InvalidResponseError(`Token endpoint response has token_type ${String(token_type)}, expected ${expectedTokenType}`);
  }
  if (typeof expires_in !== 'number' || !Number.isFinite(expires_in) || expires_in <= 0) {
    throw new InvalidResponseError('Token endpoint response has no positive expires_in');
  }
  if (scope !== undefined && typeof scope !== 'string') {
    throw new InvalidResponseError('Token endpoint response has a non-string scope');
  }

  const tokenResponse: TokenResponse = {
    accessToken: access_token,
    tokenType: expectedTokenType,
    expiresIn: expires_in,
    expiresAt: new Date(Date.now() + expires_in * 1000),
    scope: scope ?? requestedScope,
  };
  if (typeof refresh_token === 'string') {
    tokenResponse.refreshToken = refresh_token;
  }
  if (typeof issued_token_type === 'string') {
    tokenResponse.issuedTokenType = issued_token_type;
  }
  return tokenResponse;
}

/** Returns the body as a JSON object, or undefined when it is not one. */
export async function readJsonObject(response: Response): Promise<Record<string, unknown> | undefined> {
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return undefined;
  }
  return body as Record<string, unknown>;
}
