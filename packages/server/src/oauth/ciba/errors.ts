import { OAuthError } from '../errors.ts';

type Options = ConstructorParameters<typeof OAuthError>[3];

/*
 * The error codes that CIBA Core 1.0 (§11 at the token endpoint, §13 at the backchannel
 * authentication endpoint) and RFC 9396 §5 add to RFC 6749 §5.2. Each is a 400 response.
 */

/** CIBA §11: the person has not decided yet; the agent polls again after `interval`. */
export class AuthorizationPending extends OAuthError {
  constructor(description: string, options?: Options) {
    super('authorization_pending', 400, description, options);
  }
}

/** CIBA §11: the agent polled faster than `interval`, which is now 5 seconds longer. */
export class SlowDown extends OAuthError {
  constructor(description: string, options?: Options) {
    super('slow_down', 400, description, options);
  }
}

/** CIBA §11: the `auth_req_id` expired; the agent must send a new backchannel request. */
export class ExpiredToken extends OAuthError {
  constructor(description: string, options?: Options) {
    super('expired_token', 400, description, options);
  }
}

/**
 * CIBA §11: the person denied the request. At the token endpoint it is a 400 like every RFC 6749
 * §5.2 error; the backchannel authentication endpoint's `access_denied` (CIBA §13) is a 403.
 */
export class TokenAccessDenied extends OAuthError {
  constructor(description: string, options?: Options) {
    super('access_denied', 400, description, options);
  }
}

/** CIBA §13: the login hint names no active person. */
export class UnknownUserId extends OAuthError {
  constructor(description: string, options?: Options) {
    super('unknown_user_id', 400, description, options);
  }
}

/** CIBA §13: the binding message is too long or contains characters a person cannot read. */
export class InvalidBindingMessage extends OAuthError {
  constructor(description: string, options?: Options) {
    super('invalid_binding_message', 400, description, options);
  }
}

/** RFC 9396 §5: the `authorization_details` are malformed, of an unknown type, or name what does not exist. */
export class InvalidAuthorizationDetails extends OAuthError {
  constructor(description: string, options?: Options) {
    super('invalid_authorization_details', 400, description, options);
  }
}
