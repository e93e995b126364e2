import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { currentSession, signInUrl } from '../identity/session.ts';
import { createSessionCsrfToken, requireSessionCsrfToken } from '../identity/session-csrf.ts';
import { sendHtml } from '../identity/routes.ts';
import { findClient } from '../agents/clients.ts';
import { findResourceById, type ResourceWithActions } from '../resources/registry.ts';
import { nowSeconds } from '../store/ids.ts';
import { parseArgumentDeclarations, type ArgumentDeclarations } from '../policy/arguments.ts';
import { renderApprovalMessage, renderApprovalPage, type ApprovalView, type ReadableArguments } from './approval-page.tsx';
import { renderApprovalInbox, type CallInboxItem } from './inbox-page.tsx';
import { backchannelInboxItems, registerBackchannelApprovalRoutes } from './backchannel-routes.ts';
import { delegatingAgentNames } from './delegating-agents.ts';
import { needsFreshSignIn } from './fresh-sign-in.ts';
import { decideApproval, findApproval, listPendingApprovals, readApprovalBody, type Approval, type ApprovalDecisionFailure } from './service.ts';
import { registerApprovalStatusRoute } from './status-endpoint.ts';

/** Most pending approvals and CIBA requests the inbox lists. */
export const MAX_INBOX_ITEMS = 100;

const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{1,64}$/;

const DECISION_FAILURES: Record<ApprovalDecisionFailure, { status: number; title: string; message: string }> = {
  not_found: { status: 404, title: 'Approval not found', message: 'No approval with this id is waiting for you.' },
  expired: { status: 409, title: 'Approval expired', message: 'This request expired before your decision; the agent must ask again.' },
  already_decided: { status: 409, title: 'Already decided', message: 'This request was already decided.' },
  body_not_shown: { status: 409, title: 'Approval not possible', message: 'This request cannot be approved, because its body cannot be shown to you in full. You can still deny it on its page.' },
};

type ApprovalRequest = FastifyRequest<{ Params: { id: string } }>;

/**
 * Registers the person's approvals inbox, the approval page of each approval with its Approve
 * and Deny actions, and the status endpoint that agents poll. The pages are HTML for the
 * signed-in person; the shared security headers forbid framing them (`frame-ancestors 'none'`,
 * `X-Frame-Options: DENY`), and the decisions need a CSRF token derived from the signed-in
 * session (identity/session-csrf.ts).
 */
export function registerApprovalRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/approvals', async (request, reply) => {
    const signedIn = await currentSession(ctx, request);
    if (signedIn === undefined) return reply.redirect(signInUrl(request), 303);

    const approvals = await listPendingApprovals(ctx, signedIn.user.id, MAX_INBOX_ITEMS);
    const calls = await Promise.all(approvals.map((approval) => inboxItem(ctx, approval)));
    const backchannel = await backchannelInboxItems(ctx, signedIn.user.id, MAX_INBOX_ITEMS);
    // Newest first across both kinds, cut to the same maximum.
    const items = [...calls, ...backchannel].sort((a, b) => b.createdAt - a.createdAt).slice(0, MAX_INBOX_ITEMS);
    return sendHtml(reply, renderApprovalInbox({ personName: signedIn.user.display_name, items }));
  });

  app.get<{ Params: { id: string } }>('/approvals/:id', async (request, reply) => {
    const signedIn = await currentSession(ctx, request);
    if (signedIn === undefined) return reply.redirect(signInUrl(request), 303);

    const approval = await ownApproval(ctx, request.params.id, signedIn.user.id);
    if (approval === undefined) return notFound(reply);

    const view = await approvalView(ctx, approval, signedIn.user.display_name, signedIn.authTime, createSessionCsrfToken(signedIn, 'approval decision'));
    return sendHtml(reply, renderApprovalPage(view));
  });

  app.post<{ Params: { id: string } }>('/approvals/:id/approve', async (request, reply) => decide(ctx, request, reply, 'approved'));
  app.post<{ Params: { id: string } }>('/approvals/:id/deny', async (request, reply) => decide(ctx, request, reply, 'denied'));

  registerApprovalStatusRoute(app, ctx);
  registerBackchannelApprovalRoutes(app, ctx);
}

async function decide(ctx: ServerContext, request: ApprovalRequest, reply: FastifyReply, decision: 'approved' | 'denied'): Promise<FastifyReply> {
  const pagePath = `/approvals/${encodeURIComponent(request.params.id)}`;
  // Without a live session no token is valid: the person reloads the page and signs in again.
  const signedIn = await currentSession(ctx, request);
  requireSessionCsrfToken(request, signedIn, 'approval decision');

  const approval = await ownApproval(ctx, request.params.id, signedIn.user.id);
  if (approval === undefined) return notFound(reply);

  // A request whose body the page could not show whole cannot be approved. decideApproval checks
  // this too, but checking here first names the reason and needs no fresh sign-in.
  if (decision === 'approved') {
    const body = await readApprovalBody(ctx, approval, {});
    if (body.kind === 'not_shown') {
      request.log.info({ approval_id: approval.id, user: signedIn.user.id, reason: body.reason }, 'approval rejected: the request body cannot be shown in full');
      return sendHtml(reply.code(409), renderApprovalMessage('Approval not possible', `${body.reason} You can only deny this request, because approving it would allow a request you cannot see in full.`, pagePath));
    }
  }

  // Denying cannot grant anything, so only approving needs a recent sign-in. The person signs
  // in again and comes back to the approval page to approve there.
  if (decision === 'approved' && needsFreshSignIn(ctx, signedIn.authTime)) {
    request.log.info({ approval_id: approval.id, user: signedIn.user.id }, 'approval needs a fresh sign-in');
    return reply.redirect(`/login?return_to=${encodeURIComponent(pagePath)}`, 303);
  }

  let result: Awaited<ReturnType<typeof decideApproval>>;
  try {
    result = await decideApproval(ctx, { id: approval.id, userId: signedIn.user.id, decision, requestId: request.id });
  } catch (error) {
    request.log.error({ err: error, approval_id: approval.id }, 'approval decision failed');
    return sendHtml(reply.code(503), renderApprovalMessage('Decision not recorded', 'The decision could not be recorded, so the request stays pending. Try again in a moment.'));
  }

  if (!result.ok) {
    const failure = DECISION_FAILURES[result.reason];
    return sendHtml(reply.code(failure.status), renderApprovalMessage(failure.title, failure.message));
  }
  request.log.info({ approval_id: approval.id, user: signedIn.user.id, decision }, 'approval decided');
  return reply.redirect(pagePath, 303);
}

/** Finds the approval when it belongs to this person. Another person's approval is treated as absent. */
async function ownApproval(ctx: ServerContext, id: string, userId: string): Promise<Approval | undefined> {
  if (!APPROVAL_ID.test(id)) return undefined;
  const approval = await findApproval(ctx, id);
  return approval !== undefined && approval.user_id === userId ? approval : undefined;
}

async function approvalView(ctx: ServerContext, approval: Approval, personName: string, authTime: number, csrfToken: string): Promise<ApprovalView> {
  const agent = await findClient(ctx, approval.client_id);
  const resource = await findResourceById(ctx, approval.resource_id);

  const now = nowSeconds();
  return {
    approval,
    agentName: agent?.name ?? approval.client_id,
    delegatingAgentNames: await delegatingAgentNames(ctx, approval.delegation_id),
    resourceName: resource?.display_name ?? approval.resource_id,
    resourceIdentifier: resource?.identifier ?? '',
    actionDescription: actionDescription(resource, approval.action),
    personName,
    body: await readableArguments(ctx, approval, resource),
    now,
    csrfToken,
    needsFreshSignIn: needsFreshSignIn(ctx, authTime),
    maxAuthAgeSeconds: ctx.config.approvalMaxAuthAgeSeconds,
  };
}

async function inboxItem(ctx: ServerContext, approval: Approval): Promise<CallInboxItem> {
  const agent = await findClient(ctx, approval.client_id);
  const resource = await findResourceById(ctx, approval.resource_id);
  return {
    kind: 'call',
    id: approval.id,
    agentName: agent?.name ?? approval.client_id,
    resourceName: resource?.display_name ?? approval.resource_id,
    action: approval.action,
    actionDescription: actionDescription(resource, approval.action),
    method: approval.method,
    path: approval.path,
    arguments: await readableArguments(ctx, approval, resource),
    createdAt: Number(approval.created_at),
    expiresIn: Math.max(0, Number(approval.expires_at) - nowSeconds()),
  };
}

/** Reads the approval's request body with the declared arguments of its action marked. */
async function readableArguments(ctx: ServerContext, approval: Approval, resource: ResourceWithActions | undefined): Promise<ReadableArguments> {
  return readApprovalBody(ctx, approval, declaredArguments(ctx, approval, resource));
}

/**
 * Returns the declared arguments of the approval's action, or undefined when they cannot be
 * read, so that the page shows every member value whole instead of guessing which are declared.
 */
function declaredArguments(ctx: ServerContext, approval: Approval, resource: ResourceWithActions | undefined): ArgumentDeclarations | undefined {
  const action = resource?.actions.find((candidate) => candidate.name === approval.action);
  if (action === undefined) return undefined;
  try {
    return parseArgumentDeclarations(action.arguments);
  } catch (error) {
    ctx.logger.error({ err: error, resource_id: approval.resource_id, action: approval.action }, 'stored argument declarations are unreadable');
    return undefined;
  }
}

function actionDescription(resource: ResourceWithActions | undefined, action: string): string {
  return resource?.actions.find((candidate) => candidate.name === action)?.description ?? '';
}

function notFound(reply: FastifyReply): FastifyReply {
  return sendHtml(reply.code(404), renderApprovalMessage('Approval not found', 'No approval with this id is waiting for you.'));
}
