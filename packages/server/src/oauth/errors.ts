import { DPOP_SIGNING_ALGORITHMS } from './dpop/algorithms.ts';

/**
 * OAuth error responses, one class per RFC `error` value (RFC 6749 §5.2, RFC 6750 §3.1,
 * RFC 8707 §2, RFC 8693 §2.2.2). `description` goes on the wire; `detail` only to the log.
 */
export class OAuthError extends Error {
  readonly error: string;
  readonly status: number;
  readonly description: string;
  readonly headers: Record<string, string>;
  readonly extra: Record<string, unknown>;

  constructor(
    error: string,
    status: number,
    description: string,
    options: { detail?: string; headers?: Record<string, string>; extra?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(options.detail ?? description, { cause: options.cause });
    this.name = 'OAuthError';
    this.error = error;
    this.status = status;
    this.description = description;
    this.headers = options.headers ?? {};
    this.extra = options.extra ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { error: this.error, error_description: this.description, ...this.extra };
  }
}

type Options = ConstructorParameters<typeof OAuthError>[3];

export class InvalidRequest extends OAuthError {
  constructor(description: string, options?: Options) {
    super('invalid_request', 400, description, options);
  }
}

/** RFC 6749 §5.2: 401 with a challenge for the scheme the client tried (Basic by default). */
export class InvalidClient extends OAuthError {
  constructor(description: string, options?: Options) {
    super('invalid_client', 401, description, {
      ...options,
      headers: { 'www-authenticate': 'Basic realm="mandate", charset="UTF-8"', ...options?.headers },
    });
  }
}

export class InvalidGrant extends OAuthError {
  constructor(description: string, options?: Options) {
    super('invalid_grant', 400, description, options);
  }
}

export class UnauthorizedClient extends OAuthError {
  constructor(description: string, options?: Options) {
    super('unauthorized_client', 400, description, options);
  }
}

export class UnsupportedGrantType extends OAuthError {
  constructor(description: string, options?: Options) {
    super('unsupported_grant_type', 400, description, options);
  }
}

export class InvalidScope extends OAuthError {
  constructor(description: string, options?: Options) {
    super('invalid_scope', 400, description, options);
  }
}

export class InvalidTarget extends OAuthError {
  constructor(description: string, options?: Options) {
    super('invalid_target', 400, description, options);
  }
}

export class AccessDenied extends OAuthError {
  constructor(description: string, options?: Options) {
    super('access_denied', 403, description, options);
  }
}

/** RFC 6750 §3.1: the access token is missing, expired, revoked or malformed. */
export class InvalidToken extends OAuthError {
  constructor(description: string, options?: Options) {
    super('invalid_token', 401, description, {
      ...options,
      headers: { 'www-authenticate': bearerChallenge('invalid_token', description), ...options?.headers },
    });
  }
}

/** RFC 6750 §3.1: the token is valid but does not grant this request. */
export class InsufficientScope extends OAuthError {
  constructor(description: string, scope: string, options?: Options) {
    super('insufficient_scope', 403, description, {
      ...options,
      headers: { 'www-authenticate': bearerChallenge('insufficient_scope', description, scope), ...options?.headers },
    });
  }
}

/** OIDC Core §3.1.2.6: the server does not accept request objects (the `request` parameter). */
export class RequestNotSupported extends OAuthError {
  constructor(description: string, options?: Options) {
    super('request_not_supported', 400, description, options);
  }
}

export class TemporarilyUnavailable extends OAuthError {
  constructor(description: string, options?: Options) {
    super('temporarily_unavailable', 503, description, options);
  }
}

/** A challenge for a request without any token (RFC 6750 §3: no error code). */
export class MissingToken extends OAuthError {
  constructor() {
    super('invalid_token', 401, 'The request has no access token. Send one as "Authorization: Bearer <token>".', {
      headers: { 'www-authenticate': 'Bearer realm="mandate"' },
    });
  }
}

function bearerChallenge(error: string, description: string, scope?: string): string {
  const quoted = (value: string) => `"${value.replace(/["\\]/g, '')}"`;
  const parts = [`realm="mandate"`, `error=${quoted(error)}`, `error_description=${quoted(description)}`];
  if (scope !== undefined) parts.push(`scope=${quoted(scope)}`);
  return `Bearer ${parts.join(', ')}`;
}

/** Where a DPoP proof is checked, which decides the status and challenge of its errors (RFC 9449 §5, §7.1). */
export type DpopSite = 'token_endpoint' | 'resource';

/**
 * RFC 9449 §5 and §7.1: the DPoP proof is missing or invalid. 400 at the token endpoint;
 * 401 with a `DPoP` challenge at a resource.
 */
export class InvalidDpopProof extends OAuthError {
  constructor(description: string, site: DpopSite, options?: Options) {
    const challenge: Record<string, string> = site === 'resource' ? { 'www-authenticate': dpopChallenge('invalid_dpop_proof', description) } : {};
    super('invalid_dpop_proof', site === 'resource' ? 401 : 400, description, { ...options, headers: { ...challenge, ...options?.headers } });
  }
}

/**
 * RFC 9449 §8 and §9: the proof must carry the server's nonce, sent in the `DPoP-Nonce`
 * header. 400 at the token endpoint; 401 with a `DPoP` challenge at a resource.
 */
export class UseDpopNonce extends OAuthError {
  constructor(description: string, nonce: string, site: DpopSite, options?: Options) {
    const challenge: Record<string, string> = site === 'resource' ? { 'www-authenticate': dpopChallenge('use_dpop_nonce', description) } : {};
    super('use_dpop_nonce', site === 'resource' ? 401 : 400, description, { ...options, headers: { ...challenge, 'dpop-nonce': nonce, ...options?.headers } });
  }
}

/** RFC 9449 §7.1: a `DPoP` challenge naming the accepted proof algorithms. */
export function dpopChallenge(error: string, description: string): string {
  const quoted = (value: string) => `"${value.replace(/["\\]/g, '')}"`;
  return `DPoP realm="mandate", algs="${DPOP_SIGNING_ALGORITHMS.join(' ')}", error=${quoted(error)}, error_description=${quoted(description)}`;
}
