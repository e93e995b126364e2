import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { formBody } from '../http/form.ts';
import { OAuthError } from '../oauth/errors.ts';
import { renderLogoutConfirmationPage, renderLogoutErrorPage, renderSignedOutPage } from '../web/logout-page.tsx';
import { validateLogoutRequest, type LogoutRequest } from './logout-request.ts';
import { sendHtml } from './routes.ts';
import { currentSession, endSession, type SignedIn } from './session.ts';
import { createSessionCsrfToken, requireSessionCsrfToken } from './session-csrf.ts';

/** The end_session_endpoint of OpenID Connect RP-Initiated Logout 1.0, named in the discovery metadata. */
const LOGOUT_PATH = '/logout';
const CONFIRM_PATH = '/logout/confirm';

/**
 * Registers the logout endpoint (RP-Initiated Logout 1.0 §2, GET and POST) and the confirmation
 * form it shows. The person signs out at once only when a valid `id_token_hint` came from their
 * current session. For every other request they confirm first, on a form that carries a CSRF
 * token of that session (session-csrf.ts).
 */
export function registerLogoutRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // The request log line would otherwise carry the ID token of a GET request in its URL.
  const logSerializers = { req: requestWithoutIdTokenHint };

  // No automatic HEAD route: a HEAD request must not end a session.
  app.get(LOGOUT_PATH, { logSerializers, exposeHeadRoute: false }, async (request, reply) => handleLogoutRequest(ctx, request, reply, request.query as Record<string, unknown>));

  app.post(LOGOUT_PATH, { logSerializers }, async (request, reply) => {
    // §2: a POST carries the same parameters with form serialization; an empty POST has none.
    let params: Record<string, unknown>;
    try {
      params = request.body === undefined ? {} : formBody(request.body);
    } catch (error) {
      return rejectLogoutRequest(request, reply, error);
    }
    return handleLogoutRequest(ctx, request, reply, params);
  });

  app.post(CONFIRM_PATH, async (request, reply) => {
    // Without a session the form ends nothing and finishes as GET /logout would, which needs no token.
    const signedIn = await currentSession(ctx, request);
    if (signedIn !== undefined) requireSessionCsrfToken(request, signedIn, 'sign-out');

    let logout: LogoutRequest;
    try {
      // The form carries client_id, post_logout_redirect_uri and state, which are validated again.
      logout = await validateLogoutRequest(ctx, formBody(request.body));
    } catch (error) {
      return rejectLogoutRequest(request, reply, error);
    }

    if (signedIn !== undefined) await signOut(ctx, request, reply, signedIn, logout, { confirmed: true });
    return finishLogout(reply, logout);
  });
}

async function handleLogoutRequest(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, params: Record<string, unknown>): Promise<FastifyReply> {
  let logout: LogoutRequest;
  try {
    logout = await validateLogoutRequest(ctx, params);
  } catch (error) {
    return rejectLogoutRequest(request, reply, error);
  }

  const signedIn = await currentSession(ctx, request);

  if (signedIn === undefined) {
    // Logout is idempotent (§4): with no session there is nothing to end, and a validated
    // post_logout_redirect_uri is still honoured.
    if (request.method === 'GET') return finishLogout(reply, logout);
    // A cross-site POST does not carry the SameSite=Lax session cookie, but the top-level GET
    // that a 303 turns it into does. The GET shows the confirmation form for the session, or
    // finishes the logout when there really is none. The ID token is not put into the URL.
    return reply.header('cache-control', 'no-store').redirect(logoutUrl(carriedParameters(logout, params)), 303);
  }

  if (hintNamesSession(logout, signedIn)) {
    await signOut(ctx, request, reply, signedIn, logout, { confirmed: false });
    return finishLogout(reply, logout);
  }

  const page = renderLogoutConfirmationPage({
    personName: signedIn.user.display_name,
    clientName: logout.client?.name,
    params: carriedParameters(logout, params),
    csrfToken: createSessionCsrfToken(signedIn, 'sign-out'),
  });
  // Browsers apply form-action to the redirect that follows the form post as well.
  reply.header('content-security-policy', confirmationPolicy(logout.postLogoutRedirect));
  return sendHtml(reply, page);
}

/**
 * True when the hint proves the request came from the current session: same person, and the
 * `auth_time` of the sign-in that started this session. Mandate's ID tokens carry no `sid`, so
 * `auth_time` replaces it (§2 lets the OP decline hints that do not match the session).
 */
function hintNamesSession(logout: LogoutRequest, signedIn: SignedIn): boolean {
  const hint = logout.hint;
  if (hint === undefined || hint.userId !== signedIn.user.id || hint.authTime !== signedIn.authTime) return false;

  // A logout_hint that names someone else makes the request contradictory, so the person decides.
  return logout.logoutHint === undefined || logout.logoutHint === signedIn.user.username || logout.logoutHint === signedIn.user.id;
}

/** Ends the session and writes the audit entry in one transaction, so no sign-out goes unrecorded. */
async function signOut(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, signedIn: SignedIn, logout: LogoutRequest, options: { confirmed: boolean }): Promise<void> {
  const clientId = logout.client?.client_id;
  await endSession(ctx, request, reply, async (trx) => {
    await ctx.audit(
      {
        event: 'session.ended',
        user: signedIn.user.id,
        agent: clientId,
        target: { session_auth_time: signedIn.authTime },
        outcome: { result: 'signed_out', redirected: logout.postLogoutRedirect !== undefined },
        reason: { initiated_by: clientId === undefined ? 'person' : 'client', id_token_hint: logout.hint !== undefined, confirmed: options.confirmed },
        request_id: request.id,
      },
      trx,
    );
  });
  request.log.info({ user: signedIn.user.id, agent: clientId, event: 'sign_out' }, 'person signed out');
}

function finishLogout(reply: FastifyReply, logout: LogoutRequest): FastifyReply {
  if (logout.postLogoutRedirect !== undefined) return reply.header('cache-control', 'no-store').redirect(logout.postLogoutRedirect, 303);
  return sendHtml(reply, renderSignedOutPage());
}

function rejectLogoutRequest(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  if (!(error instanceof OAuthError)) throw error;
  request.log.info({ err: { error: error.error, detail: error.message }, event: 'logout.rejected' }, 'logout request rejected');
  return sendHtml(reply.code(error.status), renderLogoutErrorPage(error.description));
}

/**
 * Picks the parameters the confirmation form posts back. The client comes as client_id, so the ID
 * token itself is not written into the page; the person's confirmation replaces the hint's proof.
 */
function carriedParameters(logout: LogoutRequest, params: Record<string, unknown>): Record<string, string> {
  const carried: Record<string, string> = {};
  if (logout.client !== undefined) carried.client_id = logout.client.client_id;
  for (const name of ['post_logout_redirect_uri', 'state'] as const) {
    const value = params[name];
    if (typeof value === 'string' && value !== '') carried[name] = value;
  }
  return carried;
}

function logoutUrl(params: Record<string, string>): string {
  const query = new URLSearchParams(params).toString();
  return query === '' ? LOGOUT_PATH : `${LOGOUT_PATH}?${query}`;
}

function confirmationPolicy(postLogoutRedirect: string | undefined): string {
  let formTargets = "'self'";
  if (postLogoutRedirect !== undefined) {
    const url = new URL(postLogoutRedirect);
    // A private-use scheme (RFC 8252 §7.1) has no origin, so the policy names the scheme.
    formTargets += url.origin === 'null' ? ` ${url.protocol}` : ` ${url.origin}`;
  }
  return `default-src 'none'; style-src 'self'; img-src 'self'; form-action ${formTargets}; frame-ancestors 'none'; base-uri 'none'`;
}

/** Fastify's request log fields, with the value of `id_token_hint` in the query replaced. */
function requestWithoutIdTokenHint(request: FastifyRequest): Record<string, unknown> {
  return { method: request.method, url: urlWithoutIdTokenHint(request.url), host: request.host, remoteAddress: request.ip, remotePort: request.socket.remotePort };
}

function urlWithoutIdTokenHint(url: string): string {
  const queryStart = url.indexOf('?');
  if (queryStart === -1) return url;

  // Names are compared after percent-decoding, as the query parser reads them: `id%5Ftoken%5Fhint` is the hint too.
  const redacted = new URLSearchParams();
  for (const [name, value] of new URLSearchParams(url.slice(queryStart + 1))) redacted.append(name, name === 'id_token_hint' ? '[redacted]' : value);
  return `${url.slice(0, queryStart)}?${redacted.toString()}`;
}
