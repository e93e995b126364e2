import { ApprovalRequiredError, ForbiddenError, UnauthorizedError } from './errors.ts';
import { readJsonObject } from './token-response.ts';

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
  /** Access token sent as `Authorization: Bearer`, replacing any Authorization header in `headers`. */
  accessToken: string;
  /** Sent as the `Mandate-Approval` header when repeating a request a person approved. */
  approvalId?: string;
  signal?: AbortSignal;
}

/**
 * Sends `request` once and returns the response, except that a 401 throws
 * UnauthorizedError, a 403 approval_required throws ApprovalRequiredError and
 * any other 403 throws ForbiddenError. Redirects are returned, not followed,
 * so the access token never goes to another URL.
 */
export async function sendGatewayRequest(
  url: URL,
  request: GatewayRequest,
  fetchImplementation: typeof fetch,
): Promise<Response> {
  const headers = new Headers(request.headers);
  headers.set('authorization', `Bearer ${request.accessToken}`);
  if (request.approvalId !== undefined) {
    headers.set('mandate-approval', request.approvalId);
  }

  const init: RequestInit = {
    method: request.method ?? 'GET',
    headers,
    redirect: 'manual',
  };
  if (request.body !== undefined) init.body = request.body;
  if (request.signal !== undefined) init.signal = request.signal;
  const response = await fetchImplementation(url, init);

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
  return new ForbiddenError(error, description);
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
