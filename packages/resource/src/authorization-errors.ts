import { BearerTokenError, InsufficientScopeError } from './errors.ts';

/**
 * `access_denied` (RFC 6749 §4.1.2.1), sent with status 403: the token is
 * valid, but Mandate denied this call, or could not be asked and the call is
 * denied for that reason. The description names the case.
 */
export class AccessDeniedError extends BearerTokenError {
  readonly status = 403;
  readonly error = 'access_denied';
}

/**
 * `insufficient_scope` (RFC 6750 §3.1) for a call that Mandate denied because
 * the token's scope, the agent's roles or the person's roles do not grant the
 * action. The challenge names the action as the needed scope, and the
 * description is Mandate's reason.
 */
export class ActionNotGrantedError extends InsufficientScopeError {
  readonly #reason: string;

  constructor(action: string, reason: string, options: { realm?: string } = {}) {
    super([action], options);
    this.#reason = reason;
  }

  override get description(): string {
    return this.#reason;
  }
}

/**
 * `approval_required`, sent with status 403: the call needs the person's
 * approval. The body carries what the agent sends to Mandate's CIBA
 * backchannel authentication endpoint to ask for it: `authorization_details`
 * and `backchannel_authentication_endpoint`. With the access token that Mandate
 * then issues, the agent repeats the call.
 */
export class ApprovalRequiredError extends BearerTokenError {
  readonly status = 403;
  readonly error = 'approval_required';
  /** The approval request from Mandate's decision, or an empty object when the token acts for no person. */
  readonly approval: Readonly<Record<string, unknown>>;

  constructor(description: string, approval: Record<string, unknown>, options: { realm?: string } = {}) {
    super(description, options);
    this.approval = approval;
  }

  override toJSON(): { error?: string; error_description: string } {
    return { ...this.approval, error: this.error, error_description: this.description };
  }
}
