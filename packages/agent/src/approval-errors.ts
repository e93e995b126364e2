import { ForbiddenError } from './errors.ts';

/**
 * Reason why Mandate rejected a call that presented an approval, from the gateway's
 * `approval_error`. The person denied it, it expired, the call differs from the approved one,
 * it was already used, it does not exist, or the person has not decided yet.
 */
export type ApprovalFailure = 'denied' | 'expired' | 'mismatch' | 'used' | 'not_found' | 'pending';

const APPROVAL_FAILURES: readonly string[] = ['denied', 'expired', 'mismatch', 'used', 'not_found', 'pending'] satisfies ApprovalFailure[];

/**
 * The approval of a call cannot be used, so Mandate rejects the call (HTTP 403
 * `access_denied`). `reason` names the cause, and the three common causes have their own subclasses.
 */
export class ApprovalRejectedError extends ForbiddenError {
  readonly reason: ApprovalFailure;
  readonly approvalId: string | undefined;

  constructor(reason: ApprovalFailure, approvalId: string | undefined, description: string | undefined) {
    super('access_denied', description ?? `The approval cannot be used (${reason}).`);
    this.reason = reason;
    this.approvalId = approvalId;
  }
}

/** The person denied the approval. */
export class ApprovalDeniedError extends ApprovalRejectedError {
  constructor(approvalId: string | undefined, description?: string) {
    super('denied', approvalId, description ?? 'The person denied this request.');
  }
}

/** The approval expired before the person decided or before the call was repeated. */
export class ApprovalExpiredError extends ApprovalRejectedError {
  constructor(approvalId: string | undefined, description?: string) {
    super('expired', approvalId, description ?? 'The approval expired; send the request again to ask for a new one.');
  }
}

/** The call differs from the approved one in person, agent, resource, action, method, path or arguments. */
export class ApprovalMismatchError extends ApprovalRejectedError {
  constructor(approvalId: string | undefined, description?: string) {
    super('mismatch', approvalId, description ?? 'The approval does not match this request.');
  }
}

/** The person did not decide within the time the caller was willing to wait. The approval may still be approved later. */
export class ApprovalTimeoutError extends Error {
  readonly approvalId: string;
  readonly approvalUri: string | undefined;

  constructor(approvalId: string, approvalUri: string | undefined, waitedMs: number) {
    super(`No decision on approval ${approvalId} within ${waitedMs} ms`);
    this.name = 'ApprovalTimeoutError';
    this.approvalId = approvalId;
    this.approvalUri = approvalUri;
  }
}

export function isApprovalFailure(value: unknown): value is ApprovalFailure {
  return typeof value === 'string' && APPROVAL_FAILURES.includes(value);
}

/** Creates the error for `reason`: a subclass for denied, expired and mismatch, ApprovalRejectedError otherwise. */
export function approvalRejection(reason: ApprovalFailure, approvalId: string | undefined, description?: string): ApprovalRejectedError {
  switch (reason) {
    case 'denied':
      return new ApprovalDeniedError(approvalId, description);
    case 'expired':
      return new ApprovalExpiredError(approvalId, description);
    case 'mismatch':
      return new ApprovalMismatchError(approvalId, description);
    default:
      return new ApprovalRejectedError(reason, approvalId, description);
  }
}
