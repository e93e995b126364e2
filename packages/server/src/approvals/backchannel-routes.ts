import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { currentSession, signInUrl } from '../identity/session.ts';
import { createSessionCsrfToken, requireSessionCsrfToken } from '../identity/session-csrf.ts';
import { sendHtml } from '../identity/routes.ts';
import { findClient } from '../agents/clients.ts';
import { findResourceById, type ResourceWithActions } from '../resources/registry.ts';
import { nowSeconds } from '../store/ids.ts';
import { decideCibaRequest, findCibaRequest, listPendingCibaRequests, requestedActions, storedDetails, type CibaRequest } from '../oauth/ciba/requests.ts';
import { notifyBackchannelDecision } from '../oauth/ciba/ping.ts';
import { renderApprovalMessage } from './approval-page.tsx';
import { backchannelPagePath, renderBackchannelPage, type ApprovedTarget, type BackchannelInboxItem, type BackchannelView, type RequestedAction } from './backchannel-page.tsx';
import type { DecisionFailure } from './decision.ts';
import { needsFreshSignIn } from './fresh-sign-in.ts';

const CIBA_REQUEST_ID = /^cib_[A-Za-z0-9_-]{1,64}$/;

const DECISION_FAILURES: Record<DecisionFailure, { status: number; title: string; message: string }> = {
  not_found: { status: 404, title: 'Request not found', message: 'No request with this id is waiting for you.' },
  expired: { status: 409, title: 'Request expired', message: 'This request expired before your decision; the agent must ask again.' },
  already_decided: { status: 409, title: 'Already decided', message: 'This request was already decided.' },
};

type RequestWithId = FastifyRequest<{ Params: { id: string } }>;

/**
 * Registers the approval page of each CIBA request (CIBA Core 1.0 §7: the person's side of a
 * backchannel authentication) and its Approve and Deny actions. They follow the rules of the
 * approval pages: only the person the request names can open it, the decisions need the session's
 * CSRF token, and approving needs a recent sign-in. After a decision a ping mode agent is
 * notified in the background.
 */
export function registerBackchannelApprovalRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/approvals/ciba/:id', async (request, reply) => {
    const signedIn = await currentSession(ctx, request);
    if (signedIn === undefined) return reply.redirect(signInUrl(request), 303);

    const cibaRequest = await ownRequest(ctx, request.params.id, signedIn.user.id);
    if (cibaRequest === undefined) return notFound(reply);

    const view = await backchannelView(ctx, cibaRequest, signedIn.user.display_name, signedIn.authTime, createSessionCsrfToken(signedIn, 'CIBA decision'));
    return sendHtml(reply, renderBackchannelPage(view));
  });

  app.post<{ Params: { id: string } }>('/approvals/ciba/:id/approve', async (request, reply) => decide(ctx, request, reply, 'approved'));
  app.post<{ Params: { id: string } }>('/approvals/ciba/:id/deny', async (request, reply) => decide(ctx, request, reply, 'denied'));
}

/** Lists the person's pending CIBA requests as inbox entries, newest first. */
export async function backchannelInboxItems(ctx: ServerContext, userId: string, limit: number): Promise<BackchannelInboxItem[]> {
  const requests = await listPendingCibaRequests(ctx, userId, limit);
  return Promise.all(
    requests.map(async (cibaRequest) => {
      const [agent, resource] = await Promise.all([findClient(ctx, cibaRequest.client_id), findResourceById(ctx, cibaRequest.resource_id)]);
      return {
        kind: 'backchannel' as const,
        id: cibaRequest.id,
        agentName: agent?.name ?? cibaRequest.client_id,
        resourceName: resource?.display_name ?? cibaRequest.resource_id,
        actions: orderedActions(cibaRequest, resource).map((action) => action.name),
        bindingMessage: cibaRequest.binding_message,
        argumentsText: argumentsText(cibaRequest),
        target: approvedTarget(cibaRequest, resource),
        createdAt: Number(cibaRequest.created_at),
        expiresIn: Math.max(0, Number(cibaRequest.expires_at) - nowSeconds()),
      };
    }),
  );
}

async function decide(ctx: ServerContext, request: RequestWithId, reply: FastifyReply, decision: 'approved' | 'denied'): Promise<FastifyReply> {
  const pagePath = backchannelPagePath(encodeURIComponent(request.params.id));
  const signedIn = await currentSession(ctx, request);
  // Signed out, the form can do nothing, so the person signs in and returns to the page.
  if (signedIn === undefined) return reply.redirect(`/login?return_to=${encodeURIComponent(pagePath)}`, 303);
  requireSessionCsrfToken(request, signedIn, 'CIBA decision');

  const cibaRequest = await ownRequest(ctx, request.params.id, signedIn.user.id);
  if (cibaRequest === undefined) return notFound(reply);

  // As on the approval page: only approving needs a recent sign-in, since denying grants nothing.
  if (decision === 'approved' && needsFreshSignIn(ctx, signedIn.authTime)) {
    request.log.info({ ciba_request: cibaRequest.id, user: signedIn.user.id }, 'CIBA approval needs a fresh sign-in');
    return reply.redirect(`/login?return_to=${encodeURIComponent(pagePath)}`, 303);
  }

  let result: Awaited<ReturnType<typeof decideCibaRequest>>;
  try {
    result = await decideCibaRequest(ctx, { id: cibaRequest.id, userId: signedIn.user.id, decision, authTime: signedIn.authTime, requestId: request.id });
  } catch (error) {
    request.log.error({ err: error, ciba_request: cibaRequest.id }, 'CIBA decision failed');
    return sendHtml(reply.code(503), renderApprovalMessage('Decision not recorded', 'The decision could not be recorded, so the request stays pending. Try again in a moment.'));
  }

  if (!result.ok) {
    const failure = DECISION_FAILURES[result.reason];
    return sendHtml(reply.code(failure.status), renderApprovalMessage(failure.title, failure.message));
  }
  request.log.info({ ciba_request: cibaRequest.id, user: signedIn.user.id, decision }, 'CIBA request decided');
  notifyBackchannelDecision(ctx, result.request);
  return reply.redirect(pagePath, 303);
}

/** Finds the request when it names this person. Another person's request is treated as absent. */
async function ownRequest(ctx: ServerContext, id: string, userId: string): Promise<CibaRequest | undefined> {
  if (!CIBA_REQUEST_ID.test(id)) return undefined;
  const cibaRequest = await findCibaRequest(ctx, id);
  return cibaRequest !== undefined && cibaRequest.user_id === userId ? cibaRequest : undefined;
}

async function backchannelView(ctx: ServerContext, cibaRequest: CibaRequest, personName: string, authTime: number, csrfToken: string): Promise<BackchannelView> {
  const [agent, resource] = await Promise.all([findClient(ctx, cibaRequest.client_id), findResourceById(ctx, cibaRequest.resource_id)]);
  return {
    request: cibaRequest,
    agentName: agent?.name ?? cibaRequest.client_id,
    personName,
    resourceName: resource?.display_name ?? cibaRequest.resource_id,
    resourceIdentifier: resource?.identifier ?? '',
    actions: orderedActions(cibaRequest, resource),
    argumentsText: argumentsText(cibaRequest),
    target: approvedTarget(cibaRequest, resource),
    tokenLifetimeSeconds: resource?.access_token_ttl_seconds ?? ctx.config.accessTokenTtlSeconds,
    now: nowSeconds(),
    csrfToken,
    needsFreshSignIn: needsFreshSignIn(ctx, authTime),
    maxAuthAgeSeconds: ctx.config.approvalMaxAuthAgeSeconds,
  };
}

/** Returns the requested actions with their descriptions, the authorization detail's action first. */
function orderedActions(cibaRequest: CibaRequest, resource: ResourceWithActions | undefined): RequestedAction[] {
  const detailAction = storedDetails(cibaRequest)?.[0]?.action;
  const names = requestedActions(cibaRequest).sort((a, b) => Number(b === detailAction) - Number(a === detailAction));
  return names.map((name) => ({ name, description: resource?.actions.find((action) => action.name === name)?.description ?? '' }));
}

/** Pretty JSON of the detail's arguments, null when it allows any, undefined when the request has no detail. */
function argumentsText(cibaRequest: CibaRequest): string | null | undefined {
  const detail = storedDetails(cibaRequest)?.[0];
  if (detail === undefined) return undefined;
  return detail.arguments === undefined ? null : JSON.stringify(detail.arguments, null, 2);
}

/** Describes the HTTP requests that the request's detail allows, taking what the detail leaves open from its action. */
function approvedTarget(cibaRequest: CibaRequest, resource: ResourceWithActions | undefined): ApprovedTarget | undefined {
  const detail = storedDetails(cibaRequest)?.[0];
  const action = detail === undefined ? undefined : resource?.actions.find((candidate) => candidate.name === detail.action);
  if (detail === undefined || action === undefined) return undefined;
  return {
    method: detail.method ?? action.method.toUpperCase(),
    path: detail.path ?? action.path_prefix,
    pathBound: detail.path !== undefined,
  };
}

function notFound(reply: FastifyReply): FastifyReply {
  return sendHtml(reply.code(404), renderApprovalMessage('Request not found', 'No request with this id is waiting for you.'));
}
