import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { currentSession, signInUrl } from '../identity/session.ts';
import { sendHtml } from '../identity/routes.ts';
import { findClient } from '../agents/clients.ts';
import { findResourceById } from '../resources/registry.ts';
import { nowSeconds, sha256Hex } from '../store/ids.ts';
import { renderApprovalMessage, renderApprovalPage, type ApprovalView } from './approval-page.tsx';
import { formatPreview, openBodyPreview } from './body-preview.ts';
import { decideApproval, findApproval, type Approval, type DecisionFailure } from './service.ts';

/** Approving needs a sign-in at most this old, so an unattended browser cannot approve. */
export const MAX_APPROVAL_SIGN_IN_AGE_SECONDS = 15 * 60;

const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{1,64}$/;
const EMPTY_BODY_HASH = sha256Hex('');

const DECISION_FAILURES: Record<DecisionFailure, { status: number; title: string; message: string }> = {
  not_found: { status: 404, title: 'Approval not found', message: 'No approval with this id is waiting for you.' },
  expired: { status: 409, title: 'Approval expired', message: 'This request expired before your decision; the agent must ask again.' },
  already_decided: { status: 409, title: 'Already decided', message: 'This request was already decided.' },
};

type ApprovalRequest = FastifyRequest<{ Params: { id: string } }>;

/** Registers the approval page for the person an approval belongs to, and its Approve and Deny actions. */
export function registerApprovalRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/approvals/:id', async (request, reply) => {
    const signedIn = await currentSession(ctx, request);
    if (signedIn === undefined) return reply.redirect(signInUrl(request), 303);

    const approval = await ownApproval(ctx, request.params.id, signedIn.user.id);
    if (approval === undefined) return notFound(reply);

    const view = await approvalView(ctx, approval, signedIn.user.display_name, signedIn.authTime, await reply.generateCsrf());
    return sendHtml(reply, renderApprovalPage(view));
  });

  app.post<{ Params: { id: string } }>('/approvals/:id/approve', { preHandler: app.csrfProtection }, async (request, reply) => decide(ctx, request, reply, 'approved'));
  app.post<{ Params: { id: string } }>('/approvals/:id/deny', { preHandler: app.csrfProtection }, async (request, reply) => decide(ctx, request, reply, 'denied'));
}

async function decide(ctx: ServerContext, request: ApprovalRequest, reply: FastifyReply, decision: 'approved' | 'denied'): Promise<FastifyReply> {
  const pagePath = `/approvals/${encodeURIComponent(request.params.id)}`;
  const signedIn = await currentSession(ctx, request);
  if (signedIn === undefined) return reply.redirect(`/login?return_to=${encodeURIComponent(pagePath)}`, 303);

  const approval = await ownApproval(ctx, request.params.id, signedIn.user.id);
  if (approval === undefined) return notFound(reply);

  // Denying cannot grant anything, so only approving needs a recent sign-in.
  if (decision === 'approved' && nowSeconds() - signedIn.authTime > MAX_APPROVAL_SIGN_IN_AGE_SECONDS) {
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
  const action = resource?.actions.find((candidate) => candidate.name === approval.action);

  const preview = await openBodyPreview(ctx.envelope, approval.id, approval.body_preview);
  let body: ApprovalView['body'];
  if (preview !== undefined) body = { ...formatPreview(preview), totalBytes: preview.totalBytes };
  else if (approval.body_hash === EMPTY_BODY_HASH) body = { text: '', truncated: false, json: false, totalBytes: 0 };

  const now = nowSeconds();
  return {
    approval,
    agentName: agent?.name ?? approval.client_id,
    resourceName: resource?.display_name ?? approval.resource_id,
    resourceIdentifier: resource?.identifier ?? '',
    actionDescription: action?.description ?? '',
    personName,
    body,
    now,
    csrfToken,
    needsFreshSignIn: now - authTime > MAX_APPROVAL_SIGN_IN_AGE_SECONDS,
  };
}

function notFound(reply: FastifyReply): FastifyReply {
  return sendHtml(reply.code(404), renderApprovalMessage('Approval not found', 'No approval with this id is waiting for you.'));
}
