/**
 * Errors the SDK throws. None of them contains an access token, refresh token,
 * client secret or client assertion.
 */

/** The token endpoint returned an RFC 6749 §5.2 error response. */
export class TokenEndpointError extends Error {
  /** RFC 6749 §5.2 error code, such as `invalid_grant` or `invalid_client`. */
  readonly error: string;
  readonly description: string | undefined;
  /** HTTP status of the response. */
  readonly status: number;

  constructor(error: string, description: string | undefined, status: number) {
    super(`Token request failed with HTTP ${status} ${error}${description === undefined ? '' : `: ${description}`}`);
    this.name = 'TokenEndpointError';
    this.error = error;
    this.description = description;
    this.status = status;
  }
}

/** A server response did not have the shape the Mandate contract requires. */
export class InvalidResponseError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidResponseError';
  }
}

/** The gateway returned 401: the access token is missing, invalid, expired or revoked. */
export class UnauthorizedError extends Error {
  readonly status = 401;
  /** RFC 6750 §3.1 error code, usually `invalid_token`; undefined when the body had none. */
  readonly error: string | undefined;
  readonly description: string | undefined;
  /** The `WWW-Authenticate` response header, if any. */
  readonly wwwAuthenticate: string | undefined;

  constructor(error: string | undefined, description: string | undefined, wwwAuthenticate: string | undefined) {
    super(`Gateway request unauthorized (HTTP 401${error === undefined ? '' : ` ${error}`})${description === undefined ? '' : `: ${description}`}`);
    this.name = 'UnauthorizedError';
    this.error = error;
    this.description = description;
    this.wwwAuthenticate = wwwAuthenticate;
  }
}

/** The gateway returned 403: the token is valid but this request is not allowed. */
export class ForbiddenError extends Error {
  readonly status = 403;
  /** `insufficient_scope`, `access_denied` or `approval_required`; undefined when the body had none. */
  readonly error: string | undefined;
  readonly description: string | undefined;

  constructor(error: string | undefined, description: string | undefined) {
    super(`Gateway request forbidden (HTTP 403${error === undefined ? '' : ` ${error}`})${description === undefined ? '' : `: ${description}`}`);
    this.name = new.target.name;
    this.error = error;
    this.description = description;
  }
}

/**
 * The gateway returned 403 approval_required: a person must approve this
 * request at `approvalUri` first. Then repeat the same request with
 * `approvalId`. An approval works for one request only.
 */
export class ApprovalRequiredError extends ForbiddenError {
  readonly approvalId: string;
  /** Page where the person approves or denies, if the gateway sent one. */
  readonly approvalUri: string | undefined;
  /** Seconds until the approval request expires, if the gateway sent it. */
  readonly expiresIn: number | undefined;

  constructor(
    description: string | undefined,
    approval: { approvalId: string; approvalUri: string | undefined; expiresIn: number | undefined },
  ) {
    super('approval_required', description);
    this.approvalId = approval.approvalId;
    this.approvalUri = approval.approvalUri;
    this.expiresIn = approval.expiresIn;
  }
}
