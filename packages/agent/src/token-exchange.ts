/** RFC 8693 §3 token types that Mandate accepts as subject and actor tokens, by their short name. */
export type ExchangeTokenType = 'access_token' | 'refresh_token' | 'id_token' | 'jwt';

/** The URI that stands for each token type on the wire (RFC 8693 §3, RFC 7519 §9 for `jwt`). */
export const TOKEN_TYPE_URIS: Readonly<Record<ExchangeTokenType, string>> = {
  access_token: 'urn:ietf:params:oauth:token-type:access_token',
  refresh_token: 'urn:ietf:params:oauth:token-type:refresh_token',
  id_token: 'urn:ietf:params:oauth:token-type:id_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
};

export const GRANT_TYPE_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** An RFC 8693 §2.1 token exchange request, without `scope`, which the agent adds itself. */
export interface TokenExchangeRequest {
  /** The token that represents the person the agent acts for. */
  subjectToken: string;
  /**
   * Type of `subjectToken`. Defaults to `access_token`. With `refresh_token`, Mandate rotates
   * the refresh token: the response carries its successor in `refreshToken`.
   */
  subjectTokenType?: ExchangeTokenType;
  /**
   * The own client_credentials access token of the agent that becomes the actor: this agent's,
   * or a sub-agent's when this agent hands its token for the person on to that sub-agent. The
   * issued token then belongs to the sub-agent, so pass it on.
   */
  actorToken?: string;
  /** Type of `actorToken`. Defaults to `access_token`, and is allowed only with `actorToken`. */
  actorTokenType?: ExchangeTokenType;
  /** RFC 8707 resource indicators. A list sends one `resource` parameter per value. */
  resource?: string | string[];
  /**
   * Logical names of the target services (RFC 8693 §2.1); Mandate expects resource identifiers
   * here too. A list sends one `audience` parameter per value.
   */
  audience?: string | string[];
  /**
   * Type of token to issue. Mandate issues only access tokens, so it rejects any other value
   * with `invalid_request`.
   */
  requestedTokenType?: ExchangeTokenType;
}

/**
 * Builds the form parameters of a token exchange request, in order, with repeated `resource`
 * and `audience` parameters. Throws a TypeError for a missing subject token, an unknown token
 * type, or an `actorTokenType` without an `actorToken`.
 */
export function tokenExchangeParameters(request: TokenExchangeRequest): Array<[string, string]> {
  if (typeof request.subjectToken !== 'string' || request.subjectToken === '') {
    throw new TypeError('subjectToken must be a non-empty string');
  }
  if (request.actorToken === undefined && request.actorTokenType !== undefined) {
    throw new TypeError('actorTokenType needs an actorToken');
  }

  const parameters: Array<[string, string]> = [
    ['grant_type', GRANT_TYPE_TOKEN_EXCHANGE],
    ['subject_token', request.subjectToken],
    ['subject_token_type', tokenTypeUri(request.subjectTokenType ?? 'access_token', 'subjectTokenType')],
  ];
  if (request.actorToken !== undefined) {
    if (typeof request.actorToken !== 'string' || request.actorToken === '') {
      throw new TypeError('actorToken must be a non-empty string when given');
    }
    // RFC 8693 §2.1: actor_token_type is required whenever actor_token is sent.
    parameters.push(['actor_token', request.actorToken]);
    parameters.push(['actor_token_type', tokenTypeUri(request.actorTokenType ?? 'access_token', 'actorTokenType')]);
  }
  for (const resource of asList(request.resource)) {
    parameters.push(['resource', resource]);
  }
  for (const audience of asList(request.audience)) {
    parameters.push(['audience', audience]);
  }
  if (request.requestedTokenType !== undefined) {
    parameters.push(['requested_token_type', tokenTypeUri(request.requestedTokenType, 'requestedTokenType')]);
  }
  return parameters;
}

/** Returns the URI of the token type the server must report in `issued_token_type`. */
export function expectedIssuedTokenType(request: TokenExchangeRequest): string {
  return TOKEN_TYPE_URIS[request.requestedTokenType ?? 'access_token'];
}

function tokenTypeUri(type: ExchangeTokenType, option: string): string {
  if (!Object.hasOwn(TOKEN_TYPE_URIS, type)) {
    throw new TypeError(`${option} must be one of ${Object.keys(TOKEN_TYPE_URIS).join(', ')}, not ${String(type)}`);
  }
  return TOKEN_TYPE_URIS[type];
}

function asList(value: string | string[] | undefined): string[] {
  if (value === undefined) {
    return [];
  }
  return Array.isArray(value) ? value : [value];
}
