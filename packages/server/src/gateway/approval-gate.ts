import type { ServerContext } from '../context.ts';
import { bindingHash, bindRequest, type BoundRequest } from '../approvals/binding.ts';
import { consumeApproval, createApproval, type Approval, type ConsumeFailure } from '../approvals/service.ts';
import { notifyApprovalRequested } from '../approvals/webhook.ts';
import { AccessDenied, OAuthError } from '../oauth/errors.ts';
import { nowSeconds } from '../store/ids.ts';
import type { Db } from '../store/db.ts';

/** The `Mandate-Approval` request field names the approval an agent presents for a retried call. */
export const APPROVAL_FIELD = 'mandate-approval';

const CONSUME_FAILURES: Record<ConsumeFailure, string> = {
  not_found: 'The approval in Mandate-Approval does not exist.',
  pending: 'The approval in Mandate-Approval is still pending; retry after the person approves it.',
  denied: 'The approval in Mandate-Approval was denied by the person.',
  expired: 'The approval in Mandate-Approval has expired; send the request without it to ask again.',
  used: 'The approval in Mandate-Approval was already used; each approval allows one call.',
  mismatch: 'The approval in Mandate-Approval does not match this request (person, agent, resource, audience, action, method, path, query and arguments must be the same).',
};

/** The 403 error that makes the agent wait for the person, with the approval id, its page and its remaining lifetime. */
export class ApprovalRequired extends OAuthError {
  constructor(approval: Approval, issuer: string) {
    super('approval_required', 403, 'This action needs the person\'s approval. Ask them to open approval_uri, then retry the same request with the header "Mandate-Approval: <approval_id>".', {
      extra: {
        approval_id: approval.id,
        approval_uri: `${issuer}/approvals/${approval.id}`,
        expires_in: Math.max(0, Number(approval.expires_at) - nowSeconds()),
      },
    });
  }
}

/**
 * The 403 `access_denied` for a presented approval that cannot be used. The body names the
 * approval and the reason in `approval_error`, so an agent can tell a denial from an expiry or a
 * mismatch without parsing the description.
 */
export class ApprovalRejected extends AccessDenied {
  readonly reason: ConsumeFailure;

  constructor(reason: ConsumeFailure, approvalId: string) {
    super(CONSUME_FAILURES[reason], { extra: { approval_id: approvalId, approval_error: reason } });
    this.reason = reason;
  }
}

export type GateOutcome = { kind: 'consumed'; approvalId: string } | { kind: 'requested'; approval: Approval; created: boolean };

/** The request fields the gateway has checked; the body and content type travel beside them. */
export type GatedRequest = Omit<BoundRequest, 'resourceId' | 'body' | 'contentType'>;

/**
 * Without an approval id, creates (or finds) the pending approval for this exact request and,
 * for a new one, starts the webhook in the background. With an id, uses the approval once when
 * it is approved, unexpired and bound to this exact request: the same person, agent, resource,
 * audience, action, method, path with query, and arguments.
 */
export async function passApprovalGate(
  ctx: ServerContext,
  input: { approvalId: string | undefined; binding: GatedRequest; delegationId: string; resourceId: string; body: Buffer; contentType: string | undefined; auditRequest: (approval: Approval, trx: Db) => Promise<void> },
): Promise<GateOutcome> {
  const request: BoundRequest = { ...input.binding, resourceId: input.resourceId, body: input.body, contentType: input.contentType };

  if (input.approvalId === undefined) {
    const { approval, created } = await createApproval(ctx, { ...request, delegationId: input.delegationId }, input.auditRequest);
    if (created) notifyApprovalRequested(ctx, approval);
    return { kind: 'requested', approval, created };
  }

  const result = await consumeApproval(ctx, { id: input.approvalId, bindingHash: bindingHash(bindRequest(request)) });
  if (!result.ok) throw new ApprovalRejected(result.reason, input.approvalId);
  return { kind: 'consumed', approvalId: input.approvalId };
}
