import type { ServerContext } from '../context.ts';
import { newId, nowSeconds } from '../store/ids.ts';
import type { ApprovalTable } from '../store/schema.ts';
import type { Db } from '../store/db.ts';
import { bindingHash, bindRequest, type BoundRequest } from './binding.ts';
import { listPendingRequests, recordDecision, type DecisionFailure } from './decision.ts';
import { deleteExpiredApprovals } from './expired-requests.ts';
import { openBodyPreview, sealBodyPreview } from './body-preview.ts';
import { readableBody, type ReadableBody } from './readable-body.ts';
import type { ArgumentDeclarations } from '../policy/arguments.ts';

export type Approval = ApprovalTable;

type Ctx = Pick<ServerContext, 'db' | 'tenantId' | 'config' | 'envelope'>;

export interface NewApproval extends BoundRequest {
  delegationId: string;
}

/** Status of an approval as the agent and the person see it: a pending or approved approval past its expiry is `expired`. */
export type ApprovalStatus = Approval['status'] | 'expired';

/**
 * Creates a pending approval for one request, expiring after `approvalTtlSeconds`. An agent
 * that repeats the same request before the person decides gets the pending approval it
 * already has, so retries do not pile up requests on the person's page. `onCreated` runs in
 * the creating transaction (to append its audit entry); when it throws, nothing is created.
 * Creating one also deletes the approvals past their retention (see expired-requests.ts).
 */
export async function createApproval(ctx: Ctx, input: NewApproval, onCreated?: (approval: Approval, trx: Db) => Promise<void>): Promise<{ approval: Approval; created: boolean }> {
  const binding = bindRequest(input);
  const hash = bindingHash(binding);
  const now = nowSeconds();

  return ctx.db.transaction().execute(async (trx) => {
    const pending = await trx
      .selectFrom('approvals')
      .selectAll()
      .where('tenant_id', '=', ctx.tenantId)
      .where('binding_hash', '=', hash)
      .where('status', '=', 'pending')
      .where('expires_at', '>', now)
      .orderBy('expires_at', 'desc')
      .executeTakeFirst();
    if (pending !== undefined) return { approval: pending, created: false };

    const id = newId('apr');
    await deleteExpiredApprovals(trx, ctx.tenantId, now);
    const approval: Approval = {
      id,
      tenant_id: ctx.tenantId,
      delegation_id: input.delegationId,
      user_id: input.userId,
      client_id: input.agentId,
      resource_id: input.resourceId,
      action: input.action,
      method: input.method.toUpperCase(),
      path: input.path,
      body_hash: binding.arguments.sha256,
      body_preview: await sealBodyPreview(ctx.envelope, id, input.body, input.contentType),
      binding_hash: hash,
      status: 'pending',
      created_at: now,
      expires_at: now + ctx.config.approvalTtlSeconds,
      decided_at: null,
      used_at: null,
    };
    await trx.insertInto('approvals').values(approval).execute();
    if (onCreated !== undefined) await onCreated(approval, trx);
    return { approval, created: true };
  });
}

export async function findApproval(ctx: Pick<ServerContext, 'db' | 'tenantId'>, id: string): Promise<Approval | undefined> {
  return ctx.db.selectFrom('approvals').selectAll().where('tenant_id', '=', ctx.tenantId).where('id', '=', id).executeTakeFirst();
}

/** Lists the person's pending, unexpired approvals, newest first. */
export async function listPendingApprovals(ctx: Pick<ServerContext, 'db' | 'tenantId'>, userId: string, limit: number): Promise<Approval[]> {
  return listPendingRequests(ctx, 'approvals', userId, limit);
}

/** Returns the approval's status at `now`; only `denied` and `used` stay as they are after expiry. */
export function approvalStatus(approval: Approval, now: number): ApprovalStatus {
  if ((approval.status === 'pending' || approval.status === 'approved') && Number(approval.expires_at) <= now) return 'expired';
  return approval.status;
}

/**
 * Reads the request body of an approval as the approval page shows it. `declarations` are the declared
 * arguments of the approval's action, or undefined when they cannot be read (see readableBody).
 */
export async function readApprovalBody(ctx: Pick<ServerContext, 'envelope'>, approval: Approval, declarations: ArgumentDeclarations | undefined): Promise<ReadableBody> {
  const preview = await openBodyPreview(ctx.envelope, approval.id, approval.body_preview);
  return readableBody(preview, approval.body_hash, declarations);
}

/**
 * Why an approval cannot be decided: a DecisionFailure, or `body_not_shown` when the person is
 * to approve a request whose body the approval page cannot show whole.
 */
export type ApprovalDecisionFailure = DecisionFailure | 'body_not_shown';

/**
 * Records the person's decision on a pending, unexpired approval of their own. The update
 * checks the status and expiry itself, so two concurrent decisions cannot both apply, and
 * the `approval.decided` audit entry commits in the same transaction: when the append fails
 * the approval stays pending and the error propagates. Approving fails with `body_not_shown`
 * when the approval page cannot show the request body whole, because the person would approve
 * what they were not shown. Denying is always possible.
 */
export async function decideApproval(ctx: Ctx & Pick<ServerContext, 'audit'>, input: { id: string; userId: string; decision: 'approved' | 'denied'; requestId?: string }): Promise<{ ok: true; approval: Approval } | { ok: false; reason: ApprovalDecisionFailure }> {
  if (input.decision === 'approved') {
    // The stored body never changes after creation, so checking it before the update is final.
    const approval = await findApproval(ctx, input.id);
    if (approval !== undefined && approval.user_id === input.userId && (await readApprovalBody(ctx, approval, {})).kind === 'not_shown') return { ok: false, reason: 'body_not_shown' };
  }

  const result = await recordDecision(ctx, 'approvals', input, async (trx) => {
    const approval = await trx.selectFrom('approvals').selectAll().where('id', '=', input.id).executeTakeFirstOrThrow();
    await ctx.audit(
      {
        event: 'approval.decided',
        user: approval.user_id,
        agent: approval.client_id,
        target: { approval_id: approval.id, resource_id: approval.resource_id, action: approval.action, method: approval.method, path: approval.path },
        outcome: { decision: input.decision },
        reason: { delegation_id: approval.delegation_id, binding_hash: approval.binding_hash },
        request_id: input.requestId,
      },
      trx,
    );
    return approval;
  });
  return result.ok ? { ok: true, approval: result.row } : result;
}

export type ConsumeFailure = 'not_found' | 'pending' | 'denied' | 'expired' | 'used' | 'mismatch';

/**
 * Uses an approved approval for the request whose binding hash is given, once. A single
 * conditional UPDATE checks status, expiry and binding and marks it used, so of two
 * concurrent uses exactly one changes the row. On failure the row is read again to name
 * the reason.
 */
export async function consumeApproval(ctx: Pick<ServerContext, 'db' | 'tenantId'>, input: { id: string; bindingHash: string }): Promise<{ ok: true } | { ok: false; reason: ConsumeFailure }> {
  const now = nowSeconds();
  const result = await ctx.db
    .updateTable('approvals')
    .set({ status: 'used', used_at: now })
    .where('tenant_id', '=', ctx.tenantId)
    .where('id', '=', input.id)
    .where('status', '=', 'approved')
    .where('expires_at', '>', now)
    .where('binding_hash', '=', input.bindingHash)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === 1) return { ok: true };

  const current = await findApproval(ctx, input.id);
  if (current === undefined) return { ok: false, reason: 'not_found' };
  if (current.binding_hash !== input.bindingHash) return { ok: false, reason: 'mismatch' };
  if (current.status === 'used') return { ok: false, reason: 'used' };
  if (current.status === 'denied') return { ok: false, reason: 'denied' };
  if (current.expires_at <= now) return { ok: false, reason: 'expired' };
  return { ok: false, reason: 'pending' };
}
