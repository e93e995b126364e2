import { InvalidRequest } from '../../errors.ts';

/** RFC 8693 §3: the token type identifiers Mandate accepts as subject and actor tokens. */
export const TOKEN_TYPES = {
  access_token: 'urn:ietf:params:oauth:token-type:access_token',
  refresh_token: 'urn:ietf:params:oauth:token-type:refresh_token',
  id_token: 'urn:ietf:params:oauth:token-type:id_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
} as const;

export type TokenType = keyof typeof TOKEN_TYPES;

const BY_URI = new Map<string, TokenType>(Object.entries(TOKEN_TYPES).map(([name, uri]) => [uri, name as TokenType]));

/** Maps a `subject_token_type` or `actor_token_type` URI to its type; an unknown URI is `invalid_request`. */
export function parseTokenType(parameter: string, uri: string): TokenType {
  const type = BY_URI.get(uri);
  if (type === undefined) {
    throw new InvalidRequest(`The ${parameter} ${uri.slice(0, 100)} is not supported. Use one of ${[...BY_URI.keys()].join(', ')}.`);
  }
  return type;
}

/**
 * Checks `requested_token_type` (RFC 8693 §2.1). Mandate issues only access tokens by token
 * exchange, so any other type is `invalid_request`.
 */
export function checkRequestedTokenType(uri: string | undefined): void {
  if (uri === undefined || uri === TOKEN_TYPES.access_token) return;
  throw new InvalidRequest(`Token exchange here issues only access tokens. Send requested_token_type=${TOKEN_TYPES.access_token} or leave it out (got ${uri.slice(0, 100)}).`);
}
