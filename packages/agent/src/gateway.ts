import { approvalRejection, isApprovalFailure } from './approval-errors.ts';
import { isResourceNonceChallenge } from './dpop-proof.ts';
import type { DpopProver } from './dpop-proof.ts';
import { ApprovalRequiredError, ForbiddenError, UnauthorizedError } from './errors.ts';
import { readJsonObject } from './token-response.ts';
import type { TokenType } from './token-response.ts';

/** A request through the Mandate gateway. */
export interface GatewayRequest {
  /**
   * Absolute URL, or a path relative to `<issuer>/gateway/`, such as
   * `github/repos/acme/api/issues`. A path with a leading `/` resolves
   * against the issuer's origin instead, as in any URL resolution.
   */
  url: string | URL;
  /** HTTP method. Defaults to GET. */
  method?: string;
  headers?: HeadersInit;
  body?: BodyInit | null;
  /** Access token for the Authorization header, which replaces any Authorization header in `headers`. */
  accessToken: string;
  /**
   * How to present `accessToken`: `DPoP` sends `Authorization: DPoP` and a
   * DPoP proof (RFC 9449 §7.1), `Bearer` sends `Authorization: Bearer`.
   * Defaults to `DPoP` for an agent created with the `dpop` option, else `Bearer`.
   */
  tokenType?: TokenType;
  /** Sent as the `Mandate-Approval` header when repeating a request a person approved. */
  approvalId?: string;
  signal?: AbortSignal;
}

/** Methods that fetch upper-cases before sending (Fetch Standard, "normalize a method"). */
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);

/**
 * Sends `request` and returns the response, except that a 401 throws
 * UnauthorizedError, a 403 approval_required throws ApprovalRequiredError, a
 * 403 for an approval that cannot be used throws ApprovalRejectedError (or its
 * subclass for the reason) and any other 403 throws ForbiddenError. Redirects are returned, not followed,
 * so the access token never goes to another URL.
 *
 * The request is sent once, with one exception: when a DPoP request gets
 * 401 `use_dpop_nonce` with a `DPoP-Nonce` header, it is sent once more with
 * a new proof carrying that nonce (RFC 9449 §9). A streamed body cannot be
 * sent twice, so then the 401 is thrown and the next call uses the nonce.
 */
export async function sendGatewayRequest(
  url: URL,
  request: GatewayRequest,
  fetchImplementation: typeof fetch,
  dpop: DpopProver | undefined,
): Promise<Response> {
  const tokenType = request.tokenType ?? (dpop === undefined ? 'Bearer' : 'DPoP');
  if (tokenType === 'DPoP' && dpop === undefined) {
    throw new TypeError('tokenType DPoP needs a MandateAgent created with the dpop option');
  }
  const method = normalizeMethod(request.method ?? 'GET');

  let response = await sendOnce(url, method, request, tokenType, fetchImplementation, dpop);
  if (tokenType === 'DPoP' && dpop !== undefined) {
    const nonceReceived = dpop.storeNonce(url, response);
    if (nonceReceived && isResourceNonceChallenge(response) && isReplayableBody(request.body)) {
      await response.body?.cancel();
      response = await sendOnce(url, method, request, tokenType, fetchImplementation, dpop);
      dpop.storeNonce(url, response);
    }
  }

  if (response.status === 401) {
    const body = await readJsonObject(response);
    throw new UnauthorizedError(
      optionalString(body?.error),
      optionalString(body?.error_description),
      response.headers.get('www-authenticate') ?? undefined,
    );
  }
  if (response.status === 403) {
    throw toForbiddenError(await readJsonObject(response));
  }
  return response;
}

async function sendOnce(
  url: URL,
  method: string,
  request: GatewayRequest,
  tokenType: TokenType,
  fetchImplementation: typeof fetch,
  dpop: DpopProver | undefined,
): Promise<Response> {
  const headers = new Headers(request.headers);
  headers.set('authorization', `${tokenType} ${request.accessToken}`);
  if (tokenType === 'DPoP' && dpop !== undefined) {
    headers.set('dpop', await dpop.createProof(method, url, request.accessToken));
  }
  if (request.approvalId !== undefined) {
    headers.set('mandate-approval', request.approvalId);
  }

  const init: RequestInit = { method, headers, redirect: 'manual' };
  if (request.body !== undefined) init.body = request.body;
  if (request.signal !== undefined) init.signal = request.signal;
  return fetchImplementation(url, init);
}

/** Upper-cases the methods fetch upper-cases, so the proof's `htm` matches the method sent. */
function normalizeMethod(method: string): string {
  const upper = method.toUpperCase();
  return NORMALIZED_METHODS.has(upper) ? upper : method;
}

/** Returns true for a body that fetch can send a second time, which excludes streams because they are read once. */
function isReplayableBody(body: BodyInit | null | undefined): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof Blob ||
    body instanceof URLSearchParams ||
    body instanceof FormData
  );
}

function toForbiddenError(body: Record<string, unknown> | undefined): ForbiddenError {
  const error = optionalString(body?.error);
  const description = optionalString(body?.error_description);
  const approvalId = optionalString(body?.approval_id);

  // Without an approval_id the agent could not repeat the request, so a
  // malformed approval_required body is reported as a plain ForbiddenError.
  if (error === 'approval_required' && approvalId !== undefined) {
    return new ApprovalRequiredError(description, {
      approvalId,
      approvalUri: optionalString(body?.approval_uri),
      expiresIn: typeof body?.expires_in === 'number' ? body.expires_in : undefined,
    });
  }
  // A presented approval that cannot be used: Mandate names the reason in approval_error.
  if (error === 'access_denied' && isApprovalFailure(body?.approval_error)) {
    return approvalRejection(body.approval_error, approvalId, description);
  }
  return new ForbiddenError(error, description);
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
