import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { currentSession, signInUrl, type SignedIn } from '../identity/session.ts';
import { createSessionCsrfToken, requireSessionCsrfToken } from '../identity/session-csrf.ts';
import { sendHtml } from '../identity/routes.ts';
import { newSecret, nowSeconds, sha256Hex } from '../store/ids.ts';
import { formBody } from '../http/form.ts';
import { renderAuthorizationErrorPage, renderConsentPage } from '../web/consent-page.tsx';
import { AuthorizationPageError, AuthorizationRedirectError, redirectWith, validateAuthorizationRequest, type AuthorizationRequest } from './authorization-request.ts';
import { createDelegation } from './delegation.ts';
import { OAuthError } from './errors.ts';
import { findPushedAuthorizationRequest, spendPushedAuthorizationRequest } from './par.ts';
import { grantReasons, grantScope } from './scope.ts';

/** The parameters of an authorization request that the consent form carries back. */
const CARRIED_PARAMETERS = ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method', 'resource', 'nonce', 'dpop_jkt'];

/** RFC 6749 §3.1: the authorization endpoint, its consent page and the decision. */
export function registerAuthorizeRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // Rate-limited like /token: a URL client_id makes Mandate fetch its metadata document.
  app.get('/authorize', { config: { rateLimit: { max: ctx.config.rateLimitPerMinute, timeWindow: '1 minute' } } }, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    return withAuthorizationErrors(ctx, reply, async () => {
      // RFC 9126 §4: a request_uri stands for the parameters pushed to /par, validated again here.
      const pushed = await findPushedAuthorizationRequest(ctx, query);
      const params = pushed?.parameters ?? query;
      const authorization = await validateAuthorizationRequest(ctx, params);
      const signedIn = await currentSession(ctx, request);
      if (signedIn === undefined) return reply.redirect(signInUrl(request), 303);
      // The request_uri is spent only once the person is signed in, so that the return from the
      // sign-in page can still use it. The consent form then carries the pushed parameters.
      if (pushed !== undefined) await spendPushedAuthorizationRequest(ctx, pushed);

      const granted = await proposeScope(ctx, authorization, signedIn);
      const refused = granted.decisions.filter((decision) => !decision.allowed).map((decision) => decision.action);
      const page = renderConsentPage({
        agentName: authorization.client.name,
        agentKind: authorization.client.kind === 'agent' ? 'agent' : 'application',
        personName: signedIn.user.display_name,
        resourceName: authorization.resource.display_name,
        resourceIdentifier: authorization.resource.identifier,
        actions: authorization.resource.actions.filter((action) => granted.scope.includes(action.name)),
        refused,
        params: carriedParameters(params),
        csrfToken: createSessionCsrfToken(signedIn, 'consent'),
      });
      // Browsers apply form-action to the redirect that follows the post, so the client's origin is allowed too.
      reply.header('content-security-policy', consentPolicy(authorization.redirectUri));
      return sendHtml(reply, page);
    });
  });

  app.post('/authorize/consent', async (request, reply) => {
    const params = formBody(request.body);
    const signedIn = await currentSession(ctx, request);
    // Signed out, nothing is granted below and the client gets login_required, so the token is
    // checked only when there is a session.
    if (signedIn !== undefined) requireSessionCsrfToken(request, signedIn, 'consent');
    return withAuthorizationErrors(ctx, reply, async () => {
      const authorization = await validateAuthorizationRequest(ctx, params);
      if (signedIn === undefined) throw new AuthorizationRedirectError(authorization.redirectUri, authorization.state, new OAuthError('login_required', 400, 'The person is no longer signed in.'));

      if (params.decision !== 'allow') {
        await ctx.audit({ event: 'consent.denied', user: signedIn.user.id, agent: authorization.client.client_id, target: { resource: authorization.resource.identifier }, outcome: { decision: 'denied' } });
        throw new AuthorizationRedirectError(authorization.redirectUri, authorization.state, new OAuthError('access_denied', 403, 'The person denied the request.'));
      }

      const code = await grantConsent(ctx, authorization, signedIn, request);
      return reply.redirect(redirectWith(authorization.redirectUri, { code, state: authorization.state }, ctx.config.issuer), 303);
    });
  });
}

async function proposeScope(ctx: ServerContext, authorization: AuthorizationRequest, signedIn: SignedIn) {
  const agentId = authorization.client.kind === 'agent' ? authorization.client.client_id : undefined;
  try {
    return await grantScope(ctx, { userId: signedIn.user.id, agentId }, authorization.resource, authorization.actions);
  } catch (error) {
    if (error instanceof OAuthError) throw new AuthorizationRedirectError(authorization.redirectUri, authorization.state, error);
    throw error;
  }
}

/** Creates the delegation and a single-use authorization code bound to the PKCE challenge. */
async function grantConsent(ctx: ServerContext, authorization: AuthorizationRequest, signedIn: SignedIn, request: FastifyRequest): Promise<string> {
  const granted = await proposeScope(ctx, authorization, signedIn);
  const code = newSecret();

  await ctx.db.transaction().execute(async (trx) => {
    const delegation = await createDelegation({ db: trx, tenantId: ctx.tenantId }, { userId: signedIn.user.id, clientId: authorization.client.client_id, resourceId: authorization.resource.id, scope: granted.scope, source: 'consent' });
    await trx
      .insertInto('authorization_codes')
      .values({
        code_hash: sha256Hex(code),
        tenant_id: ctx.tenantId,
        client_id: authorization.client.client_id,
        user_id: signedIn.user.id,
        delegation_id: delegation.id,
        redirect_uri: authorization.redirectUri,
        code_challenge: authorization.codeChallenge,
        scope: granted.scope.join(' '),
        resource_id: authorization.resource.id,
        nonce: authorization.nonce ?? null,
        openid: authorization.openid ? 1 : 0,
        auth_time: signedIn.authTime,
        expires_at: nowSeconds() + ctx.config.authorizationCodeTtlSeconds,
        used_at: null,
        dpop_jkt: authorization.dpopJkt ?? null,
      })
      .execute();
    request.log.info({ user: signedIn.user.id, agent: authorization.client.client_id, delegation: delegation.id }, 'consent granted');
    await ctx.audit({
      event: 'delegation.created',
      user: signedIn.user.id,
      agent: authorization.client.client_id,
      target: { resource: authorization.resource.identifier, delegation_id: delegation.id, scope: granted.scope.join(' ') },
      outcome: { decision: 'allowed' },
      reason: { consent: true, ...grantReasons(granted.decisions) },
    }, trx);
  });
  return code;
}

async function withAuthorizationErrors(ctx: ServerContext, reply: FastifyReply, handle: () => Promise<FastifyReply>): Promise<FastifyReply> {
  try {
    return await handle();
  } catch (error) {
    if (error instanceof AuthorizationPageError) return sendHtml(reply.code(400), renderAuthorizationErrorPage(error.message));
    if (error instanceof AuthorizationRedirectError) {
      const params = { error: error.error.error, error_description: error.error.description, state: error.state };
      return reply.redirect(redirectWith(error.redirectUri, params, ctx.config.issuer), 303);
    }
    throw error;
  }
}

function consentPolicy(redirectUri: string): string {
  const origin = new URL(redirectUri).origin;
  const formTargets = origin === 'null' ? "'self'" : `'self' ${origin}`;
  return `default-src 'none'; style-src 'self'; img-src 'self'; form-action ${formTargets}; frame-ancestors 'none'; base-uri 'none'`;
}

function carriedParameters(params: Record<string, unknown>): Record<string, string> {
  const carried: Record<string, string> = {};
  for (const name of CARRIED_PARAMETERS) {
    const value = params[name];
    if (typeof value === 'string') carried[name] = value;
  }
  return carried;
}
