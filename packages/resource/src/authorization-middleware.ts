import type { ServerResponse } from 'node:http';

import { evaluate, evaluationEndpointOf } from './access-evaluation.ts';
import type { AccessEvaluationOptions, AuthorizationDecision } from './access-evaluation.ts';
import { extractAccessTokenCredentials } from './access-token-credentials.ts';
import { AccessDeniedError, ActionNotGrantedError, ApprovalRequiredError } from './authorization-errors.ts';
import { InvalidTokenError } from './errors.ts';
import type { BearerTokenError } from './errors.ts';
import type { AuthenticatedRequest } from './middleware.ts';
import { sendBearerError } from './middleware.ts';
import { parseSecureUrl } from './secure-url.ts';

/** A request after requireAuthorization allowed it. */
export type AuthorizedRequest = AuthenticatedRequest & { authorizationDecision?: AuthorizationDecision };

/**
 * Options of requireAuthorization. `Req` is the request type the callbacks receive, such as
 * Express's `Request`, whose parsed `body` an `arguments` callback can then return.
 */
export interface RequireAuthorizationOptions<Req extends AuthorizedRequest = AuthorizedRequest> extends AccessEvaluationOptions {
  /** The action this route performs, or a function that maps a request to it. No action denies the request. */
  action: string | ((req: Req) => string | undefined | Promise<string | undefined>);
  /**
   * Reads the call's arguments for Mandate's policies, for example Express's
   * parsed `req.body`. The middleware does not read the body itself.
   */
  arguments?: (req: Req) => Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;
  /**
   * Path prefix of this server's URLs that Mandate's paths for the resource leave out, as it
   * appears in request URLs, such as `/api`. When Mandate's gateway also forwards to this server,
   * this is the path of the resource's upstream base URL. The middleware removes it from the
   * request path that it sends as `context.path`, and denies a request whose path does not start
   * with it. Defaults to `/`, which sends the whole path.
   */
  basePath?: string;
  /** `realm` of the challenges. Defaults to `audience`. */
  realm?: string;
  /** URL of this resource's RFC 9728 metadata, for the `resource_metadata` of challenges. */
  resourceMetadataUrl?: string;
  /** Receives every decision with its request, for logging. A decision that could not be obtained carries `error`. */
  onDecision?: (decision: AuthorizationDecision, req: Req) => void;
}

/**
 * Connect/Express-style middleware, also callable from a plain node:http
 * handler. On an allow it sets `req.authorizationDecision`, calls `next()`
 * when given and resolves to the decision. Otherwise it sends the error
 * response itself, does not call `next`, and resolves to undefined.
 */
export type AuthorizationMiddleware<Req extends AuthorizedRequest = AuthorizedRequest> = (
  req: Req,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => Promise<AuthorizationDecision | undefined>;

/**
 * Creates middleware that requests Mandate's decision on each request through
 * the AuthZEN Access Evaluation API. It must run after requireAccessToken,
 * which verifies the token and its DPoP proof and sets `req.auth`. Mandate
 * then checks revocation, the delegation, the current roles and the policy.
 *
 * It fails closed: without `req.auth`, without an action, with a path outside
 * `basePath`, or without a decision from Mandate (network error, timeout, a
 * status other than 200, a malformed body), the request gets 403
 * `access_denied`. Mandate returns 400 for a path that its gateway rejects,
 * such as one with `..` or `//` segments, so such a request gets 403 too. A denied decision
 * gets 401 `invalid_token` when Mandate rejected the token, 403
 * `insufficient_scope` when the scope or roles do not grant the action, 403
 * `approval_required` with the approval request when the person must approve,
 * and 403 `access_denied` otherwise.
 */
export function requireAuthorization<Req extends AuthorizedRequest = AuthorizedRequest>(options: RequireAuthorizationOptions<Req>): AuthorizationMiddleware<Req> {
  // Configuration errors surface at start-up, not as denials of every request.
  evaluationEndpointOf(options);
  const basePath = parseBasePath(options.basePath);
  const realm = options.realm ?? options.audience;
  const resourceMetadataUrl = options.resourceMetadataUrl === undefined ? undefined : parseSecureUrl(options.resourceMetadataUrl, 'resourceMetadataUrl').href;

  return async (req, res, next) => {
    const { decision, action, scheme } = await decideRequest(options, basePath, req);
    report(options, decision, req);

    if (!decision.allowed) {
      sendBearerError(res, denialError(decision, action, realm), { scheme, resourceMetadataUrl });
      return undefined;
    }
    req.authorizationDecision = decision;
    next?.();
    return decision;
  };
}

interface DecidedRequest {
  decision: AuthorizationDecision;
  /** The action the request maps to, when it maps to one. */
  action?: string | undefined;
  /** The scheme the request used, for the challenge (RFC 9449 §7.1). */
  scheme: 'Bearer' | 'DPoP';
}

async function decideRequest<Req extends AuthorizedRequest>(options: RequireAuthorizationOptions<Req>, basePath: string, req: Req): Promise<DecidedRequest> {
  let scheme: 'Bearer' | 'DPoP' = 'Bearer';
  let action: string | undefined;
  try {
    if (req.auth === undefined) {
      throw new TypeError('requireAuthorization runs only after requireAccessToken has accepted the request and set req.auth');
    }
    const credentials = extractAccessTokenCredentials(req, options.realm ?? options.audience);
    scheme = credentials.scheme;

    action = typeof options.action === 'string' ? options.action : await options.action(req);
    if (action === undefined || action === '') {
      return { decision: denied('action_unmapped', 'No action of this resource covers this request.'), scheme };
    }
    const path = resourcePath(req, basePath);
    if (path === undefined) {
      return { decision: denied('path_outside_base', `The request path is outside ${basePath}, the base path of this resource.`), action, scheme };
    }
    const callArguments = await options.arguments?.(req);

    const decision = await evaluate(options, {
      token: credentials.token,
      action,
      arguments: callArguments,
      method: req.method,
      path,
    });
    return { decision, action, scheme };
  } catch (error) {
    const decision: AuthorizationDecision = {
      allowed: false,
      result: 'deny',
      deniedBy: 'decision_unavailable',
      reason: 'The request could not be authorized, so it is denied.',
      context: {},
      error: error instanceof Error ? error : new Error(String(error)),
    };
    return { decision, action, scheme };
  }
}

function denied(deniedBy: string, reason: string): AuthorizationDecision {
  return { allowed: false, result: 'deny', deniedBy, reason, context: {} };
}

/** Maps a denied decision to the response the agent gets. */
function denialError(decision: AuthorizationDecision, action: string | undefined, realm: string): BearerTokenError {
  if (decision.result === 'approval_required') {
    const approval = decision.context.approval;
    return new ApprovalRequiredError(decision.reason, typeof approval === 'object' && approval !== null ? (approval as Record<string, unknown>) : {}, { realm });
  }
  switch (decision.deniedBy) {
    case 'token_invalid':
      // RFC 6750 §3.1: a revoked token, or one whose delegation was revoked, is invalid_token.
      return new InvalidTokenError(decision.reason, { realm });
    case 'token_scope':
    case 'agent_roles':
    case 'user_roles':
      return new ActionNotGrantedError(action ?? '', decision.reason, { realm });
    default:
      return new AccessDeniedError(decision.reason, { realm });
  }
}

function report<Req extends AuthorizedRequest>(options: RequireAuthorizationOptions<Req>, decision: AuthorizationDecision, req: Req): void {
  try {
    options.onDecision?.(decision, req);
  } catch {
    // A failing logger must not turn a deny into an exception or an allow into a failure.
  }
}

/**
 * Returns the target for `context.path`: the request path without `basePath`, with its query,
 * or undefined when the path does not start with `basePath` on a segment boundary.
 * It reads `req.originalUrl` under Express, because Express removes the mount path of a router
 * from `req.url`, so the path would otherwise depend on where the middleware is mounted. The
 * path stays percent-encoded, because Mandate decodes and checks it as its gateway does, and
 * Mandate gives policies the query as sent (`context.query`).
 */
function resourcePath(req: AuthorizedRequest, basePath: string): string | undefined {
  const target = req.originalUrl ?? req.url ?? '/';
  const queryStart = target.indexOf('?');
  const path = queryStart === -1 ? target : target.slice(0, queryStart);
  const query = queryStart === -1 ? '' : target.slice(queryStart);

  if (basePath === '/') return target;
  if (path === basePath) return `/${query}`;
  return path.startsWith(`${basePath}/`) ? `${path.slice(basePath.length)}${query}` : undefined;
}

/** Checks the `basePath` option and returns it without a trailing `/`, or `/` when it is unset. */
function parseBasePath(basePath: string | undefined): string {
  if (basePath === undefined) return '/';
  if (!basePath.startsWith('/') || /[?#\s]/.test(basePath) || basePath.includes('//')) {
    throw new TypeError(`basePath ${JSON.stringify(basePath)} must be a URL path that starts with / and contains no query, fragment, whitespace or empty segment, such as /api`);
  }
  return basePath.length > 1 && basePath.endsWith('/') ? basePath.slice(0, -1) : basePath;
}
