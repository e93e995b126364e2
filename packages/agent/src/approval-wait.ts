import { ApprovalTimeoutError, approvalRejection } from './approval-errors.ts';
import type { DpopProver } from './dpop-proof.ts';
import { ApprovalRequiredError, InvalidResponseError } from './errors.ts';
import { sendGatewayRequest } from './gateway.ts';
import type { GatewayRequest } from './gateway.ts';
import { readJsonObject } from './token-response.ts';
import type { TokenType } from './token-response.ts';

/** Default time between two approval status requests. */
export const DEFAULT_POLL_INTERVAL_MS = 2000;
/** Shortest time between two approval status requests that the SDK accepts. */
export const MIN_POLL_INTERVAL_MS = 100;

/** Status of an approval: `expired` once a pending or approved approval is past its expiry. */
export type ApprovalState = 'pending' | 'approved' | 'denied' | 'used' | 'expired';

const APPROVAL_STATES: readonly string[] = ['pending', 'approved', 'denied', 'used', 'expired'] satisfies ApprovalState[];

/** The body of `GET <issuer>/approvals/{id}/status`. */
export interface ApprovalStatus {
  approvalId: string;
  status: ApprovalState;
  /** Seconds until the approval expires; 0 once it has. */
  expiresIn: number;
}

/** A status request for an approval, with the access token of the call that needs it. */
export interface ApprovalStatusRequest {
  approvalId: string;
  accessToken: string;
  /** How to present `accessToken`, as in GatewayRequest. */
  tokenType?: TokenType;
  signal?: AbortSignal;
}

/** An approval the gateway asked for: the person decides at `approvalUri`. */
export interface PendingApproval {
  approvalId: string;
  approvalUri: string | undefined;
  /** Seconds until the approval expires, as the gateway sent it. */
  expiresIn: number | undefined;
}

export interface ApprovalWaitOptions {
  /** Maximum wait for the person's decision, in milliseconds. Defaults to the approval's remaining lifetime plus one poll interval. */
  timeoutMs?: number;
  /** Time between two status requests, in milliseconds; at least 100. Defaults to 2000. */
  pollIntervalMs?: number;
  /** Called once after the gateway returns approval_required, for example to show the person `approvalUri`. The wait starts after it returns. */
  onApprovalRequired?: (approval: PendingApproval) => void | Promise<void>;
}

/** Returns the status endpoint of an approval, under the issuer so the token goes nowhere else. */
export function approvalStatusUrl(issuer: string, approvalId: string): string {
  return `${issuer.replace(/\/$/, '')}/approvals/${encodeURIComponent(approvalId)}/status`;
}

/**
 * Requests the status of an approval with the access token of the call that needs it. Throws
 * UnauthorizedError for a 401, ForbiddenError for a 403, ApprovalRejectedError with reason
 * `not_found` for a 404 (no such approval for this token's delegation), and
 * InvalidResponseError for any other status or a malformed body.
 */
export async function readApprovalStatus(url: URL, request: ApprovalStatusRequest, fetchImplementation: typeof fetch, dpop: DpopProver | undefined): Promise<ApprovalStatus> {
  const gatewayRequest: GatewayRequest = { url, method: 'GET', accessToken: request.accessToken };
  if (request.tokenType !== undefined) gatewayRequest.tokenType = request.tokenType;
  if (request.signal !== undefined) gatewayRequest.signal = request.signal;
  const response = await sendGatewayRequest(url, gatewayRequest, fetchImplementation, dpop);

  const body = await readJsonObject(response);
  if (response.status === 404) {
    throw approvalRejection('not_found', request.approvalId, typeof body?.error_description === 'string' ? body.error_description : undefined);
  }
  if (response.status !== 200) {
    throw new InvalidResponseError(`Approval status request failed with HTTP ${response.status}`);
  }

  const status = body?.status;
  const expiresIn = body?.expires_in;
  if (body?.approval_id !== request.approvalId || typeof status !== 'string' || !APPROVAL_STATES.includes(status) || typeof expiresIn !== 'number') {
    throw new InvalidResponseError(`Approval status response for ${request.approvalId} lacks approval_id, a known status or expires_in`);
  }
  return { approvalId: request.approvalId, status: status as ApprovalState, expiresIn };
}

/**
 * Sends a gateway request. When the gateway returns 403 approval_required, waits for the
 * person's decision by polling the approval's status, and then sends the same request once more
 * with the approval. A denied, expired or already used approval throws the matching
 * ApprovalRejectedError, and no decision within the timeout throws ApprovalTimeoutError.
 * `request.signal` cancels the wait as well as the requests: the promise rejects with the
 * signal's reason, as fetch does.
 */
export async function callWithApproval(
  request: GatewayRequest,
  options: ApprovalWaitOptions,
  calls: { send: (request: GatewayRequest) => Promise<Response>; readStatus: (request: ApprovalStatusRequest) => Promise<ApprovalStatus> },
): Promise<Response> {
  checkRepeatableBody(request.body);
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  if (!Number.isFinite(pollIntervalMs) || pollIntervalMs < MIN_POLL_INTERVAL_MS) {
    throw new TypeError(`pollIntervalMs must be a number of milliseconds of at least ${MIN_POLL_INTERVAL_MS}`);
  }
  if (options.timeoutMs !== undefined && !(options.timeoutMs >= 0)) {
    throw new TypeError('timeoutMs must be a non-negative number of milliseconds');
  }

  let pending: PendingApproval;
  try {
    return await calls.send(request);
  } catch (error) {
    if (!(error instanceof ApprovalRequiredError)) throw error;
    pending = { approvalId: error.approvalId, approvalUri: error.approvalUri, expiresIn: error.expiresIn };
  }

  await options.onApprovalRequired?.(pending);
  const timeoutMs = options.timeoutMs ?? (pending.expiresIn ?? 0) * 1000 + pollIntervalMs;
  await waitForApproval(pending, timeoutMs, pollIntervalMs, (approvalId) => {
    const statusRequest: ApprovalStatusRequest = { approvalId, accessToken: request.accessToken };
    if (request.tokenType !== undefined) statusRequest.tokenType = request.tokenType;
    if (request.signal !== undefined) statusRequest.signal = request.signal;
    return calls.readStatus(statusRequest);
  }, request.signal);

  return calls.send({ ...request, approvalId: pending.approvalId });
}

/** Polls until the approval is approved; throws when it is denied, expired or used, on timeout, or on abort. */
async function waitForApproval(pending: PendingApproval, timeoutMs: number, pollIntervalMs: number, readStatus: (approvalId: string) => Promise<ApprovalStatus>, signal: AbortSignal | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new ApprovalTimeoutError(pending.approvalId, pending.approvalUri, timeoutMs);
    await sleep(Math.min(pollIntervalMs, remaining), signal);

    const { status } = await readStatus(pending.approvalId);
    if (status === 'approved') return;
    if (status !== 'pending') throw approvalRejection(status, pending.approvalId);
  }
}

/**
 * Rejects bodies that cannot be sent a second time with the same bytes: a stream is read once,
 * and fetch gives each FormData a new random multipart boundary, which changes the bytes the
 * approval is bound to.
 */
function checkRepeatableBody(body: BodyInit | null | undefined): void {
  if (body instanceof ReadableStream || body instanceof FormData) {
    throw new TypeError('callGatewayWithApproval needs a body it can send twice unchanged: a string, bytes, a Blob or URLSearchParams, not a stream or FormData');
  }
  if (typeof body === 'object' && body !== null && Symbol.asyncIterator in body) {
    throw new TypeError('callGatewayWithApproval needs a body it can send twice unchanged: a string, bytes, a Blob or URLSearchParams, not an async iterable');
  }
}

/** Waits `ms` milliseconds; rejects with the signal's reason when it aborts first. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
