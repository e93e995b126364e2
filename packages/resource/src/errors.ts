/**
 * Parameters of the `WWW-Authenticate` challenge that depend on the resource
 * server's configuration rather than on the error.
 */
export interface ChallengeOptions {
  /** Authentication scheme of the challenge. Defaults to `Bearer`. */
  scheme?: 'Bearer' | 'DPoP';
  /** RFC 9449 §7.1 `algs`: the DPoP proof algorithms accepted, for a `DPoP` challenge. */
  dpopAlgorithms?: readonly string[];
  /** RFC 9728 §5.1 `resource_metadata`: the URL of the protected resource metadata document. */
  resourceMetadataUrl?: string;
  /**
   * RFC 6750 §3 `scope`: the scopes the resource requires. The challenge to a request without a
   * token carries them, so an MCP client requests them when it authorizes (MCP scope selection).
   */
  scopes?: readonly string[];
}

/**
 * Errors a resource server returns for a request with a Bearer (RFC 6750 §3)
 * or DPoP (RFC 9449 §7.1) access token.
 * Each error carries the HTTP status, the `WWW-Authenticate` challenge and the
 * JSON body to send. The descriptions are fixed texts that never contain the
 * token; the detail of a failure is kept in `cause` for the server's own logs.
 */
export abstract class BearerTokenError extends Error {
  abstract readonly status: number;
  /** RFC 6750 §3.1 error code, or undefined for a request that carried no token. */
  abstract readonly error: string | undefined;
  /** The `realm` auth-param of the challenge, or undefined to leave it out. */
  readonly realm: string | undefined;

  constructor(description: string, options: { realm?: string; cause?: unknown } = {}) {
    super(description, { cause: options.cause });
    this.name = new.target.name;
    this.realm = options.realm;
  }

  /** Human-readable text for the `error_description` attribute and body member. */
  get description(): string {
    return this.message;
  }

  /** Value of the `WWW-Authenticate` response header for a `Bearer` challenge with no options. */
  get wwwAuthenticate(): string {
    return this.challenge();
  }

  /** Formats the `WWW-Authenticate` challenge for this error with the scheme and parameters in `options`. */
  challenge(options: ChallengeOptions = {}): string {
    const parameters = this.challengeParameters();
    if (options.scheme === 'DPoP' && options.dpopAlgorithms !== undefined) {
      parameters.push(['algs', options.dpopAlgorithms.join(' ')]);
    }
    if (options.resourceMetadataUrl !== undefined) {
      parameters.push(['resource_metadata', options.resourceMetadataUrl]);
    }
    if (this.error === undefined && options.scopes !== undefined && options.scopes.length > 0) {
      parameters.push(['scope', options.scopes.join(' ')]);
    }
    return formatChallenge(options.scheme ?? 'Bearer', parameters);
  }

  /** JSON body of the response (RFC 6749 §5.2 member names). */
  toJSON(): { error?: string; error_description: string } {
    if (this.error === undefined) {
      return { error_description: this.description };
    }
    return { error: this.error, error_description: this.description };
  }

  protected challengeParameters(): [string, string][] {
    const parameters: [string, string][] = [];
    if (this.realm !== undefined) {
      parameters.push(['realm', this.realm]);
    }
    if (this.error !== undefined) {
      parameters.push(['error', this.error]);
      parameters.push(['error_description', this.description]);
    }
    return parameters;
  }
}

/**
 * The request carried no Bearer token. RFC 6750 §3.1: the challenge then
 * names no error code, so a client can tell "authenticate" from "rejected".
 */
export class MissingTokenError extends BearerTokenError {
  readonly status = 401;
  readonly error = undefined;

  constructor(options: { realm?: string } = {}) {
    super('This resource requires an access token in the Authorization header.', options);
  }
}

/** `invalid_request` (RFC 6750 §3.1): a malformed request, sent with status 400. */
export class InvalidRequestError extends BearerTokenError {
  readonly status = 400;
  readonly error = 'invalid_request';
}

/** `invalid_token` (RFC 6750 §3.1): the token is expired, revoked, malformed or not for this resource. */
export class InvalidTokenError extends BearerTokenError {
  readonly status = 401;
  readonly error = 'invalid_token';
}

/**
 * `insufficient_scope` (RFC 6750 §3.1): the token is valid but lacks a scope.
 * The challenge carries the `scope` attribute with every scope the request needs.
 */
export class InsufficientScopeError extends BearerTokenError {
  readonly status = 403;
  readonly error = 'insufficient_scope';
  readonly requiredScopes: readonly string[];

  constructor(requiredScopes: readonly string[], options: { realm?: string } = {}) {
    super(`The access token lacks a required scope: ${requiredScopes.join(' ')}.`, options);
    this.requiredScopes = requiredScopes;
  }

  protected override challengeParameters(): [string, string][] {
    return [...super.challengeParameters(), ['scope', this.requiredScopes.join(' ')]];
  }
}

/**
 * `invalid_dpop_proof` (RFC 9449 §7.1): the DPoP proof sent with a DPoP-bound
 * access token is missing, malformed, replayed or does not match the request.
 */
export class InvalidDpopProofError extends BearerTokenError {
  readonly status = 401;
  readonly error = 'invalid_dpop_proof';
}

/**
 * `use_dpop_nonce` (RFC 9449 §9): the resource server requires a nonce and
 * the proof carried none, or one that is invalid or expired. The response
 * sends `nonce` in the `DPoP-Nonce` header, and the client repeats the
 * request with a proof that carries it.
 */
export class UseDpopNonceError extends BearerTokenError {
  readonly status = 401;
  readonly error = 'use_dpop_nonce';
  /** The fresh nonce for the `DPoP-Nonce` response header. */
  readonly nonce: string;

  constructor(description: string, nonce: string, options: { realm?: string } = {}) {
    super(description, options);
    this.nonce = nonce;
  }
}

function formatChallenge(scheme: string, parameters: [string, string][]): string {
  if (parameters.length === 0) {
    return scheme;
  }
  const attributes = parameters.map(([name, value]) => `${name}="${sanitizeForQuotedString(value)}"`);
  return `${scheme} ${attributes.join(', ')}`;
}

/**
 * Replaces each character that RFC 6750 §3 forbids in error_description and
 * scope values (anything outside printable ASCII, `"` and `\`) with `?`, so
 * the value fits in a quoted-string without escapes.
 */
function sanitizeForQuotedString(value: string): string {
  return value.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?');
}
