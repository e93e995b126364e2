import { createHmac } from 'node:crypto';
import type { ServerContext } from '../context.ts';
import { findClient } from '../agents/clients.ts';
import { findUser } from '../identity/users.ts';
import { findResourceById } from '../resources/registry.ts';
import { newId, nowSeconds } from '../store/ids.ts';
import { deliverWithRetries } from '../http/outbound-delivery.ts';
import type { Approval } from './service.ts';

/**
 * The `approval.requested` webhook, sent for each new approval and signed as Standard Webhooks
 * 1.0 specifies for symmetric keys. Each delivery has the headers `webhook-id`,
 * `webhook-timestamp` and `webhook-signature`. The signature is `v1,` and the base64
 * HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>` under the key that the `whsec_`
 * secret encodes. A receiver verifies it and rejects a timestamp too far from its clock or a
 * `webhook-id` it has already processed, so a captured delivery cannot be replayed.
 */

/** Deliveries of one webhook, the first included. */
export const WEBHOOK_MAX_ATTEMPTS = 5;
/** Delay before the second attempt; each later delay doubles, with up to 20% taken off at random. */
export const WEBHOOK_FIRST_RETRY_DELAY_MS = 1000;
/** Time one attempt may take, response included. */
export const WEBHOOK_ATTEMPT_TIMEOUT_MS = 10_000;
/** Prefix of a Standard Webhooks symmetric secret; the rest is the base64 key. */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';

type Ctx = Pick<ServerContext, 'db' | 'tenantId' | 'config' | 'logger'>;

interface WebhookTarget {
  url: string;
  key: Buffer;
  /** The URL's origin, which logs name instead of the URL: a webhook URL may itself carry a secret. */
  origin: string;
}

/** The JSON body of an `approval.requested` webhook. It carries no token, credential or request body. */
export interface ApprovalRequestedEvent {
  type: 'approval.requested';
  /** When the approval was created (RFC 3339). */
  timestamp: string;
  data: {
    approval_id: string;
    approval_uri: string;
    status: 'pending';
    user: { id: string; username: string | null };
    agent: { client_id: string; name: string | null };
    resource: { id: string; identifier: string | null; name: string | null };
    action: string;
    method: string;
    path: string;
    expires_at: string;
  };
}

/**
 * Starts delivering the `approval.requested` webhook for a new approval in the background, when
 * a webhook is configured. It returns at once and never throws, so the gateway call that created
 * the approval does not wait for the receiver.
 */
export function notifyApprovalRequested(ctx: Ctx, approval: Approval): void {
  const target = webhookTarget(ctx);
  if (target === undefined) return;

  deliverApprovalRequested(ctx, target, approval).catch((error: unknown) => {
    ctx.logger.error({ err: { name: (error as Error).name, message: (error as Error).message }, approval_id: approval.id, receiver: target.origin }, 'approval webhook failed before delivery');
  });
}

function webhookTarget(ctx: Ctx): WebhookTarget | undefined {
  const { approvalWebhookUrl: url, approvalWebhookSecret: secret } = ctx.config;
  if (url === undefined || secret === undefined) return undefined;
  return { url, key: Buffer.from(secret.slice(WEBHOOK_SECRET_PREFIX.length), 'base64'), origin: new URL(url).origin };
}

/**
 * Delivers one webhook, retrying failures with exponential backoff. Retries stop after
 * WEBHOOK_MAX_ATTEMPTS attempts, after a 410 Gone, or when the next attempt would start after the
 * approval expires, because the person can no longer decide then. Every attempt keeps the
 * `webhook-id` and signs a fresh timestamp. A redirect counts as a failure (Standard Webhooks,
 * "Delivery success and failure").
 */
async function deliverApprovalRequested(ctx: Ctx, target: WebhookTarget, approval: Approval): Promise<void> {
  const body = JSON.stringify(await approvalRequestedEvent(ctx, approval));
  const webhookId = newId('msg');
  const ids = { approval_id: approval.id, webhook_id: webhookId, receiver: target.origin };

  const outcome = await deliverWithRetries({
    url: target.url,
    body,
    headers: () => signatureHeaders(target, webhookId, body),
    maxAttempts: WEBHOOK_MAX_ATTEMPTS,
    firstRetryDelayMs: WEBHOOK_FIRST_RETRY_DELAY_MS,
    attemptTimeoutMs: WEBHOOK_ATTEMPT_TIMEOUT_MS,
    deadlineMs: Number(approval.expires_at) * 1000,
    deadlineReason: 'the approval expires before the next attempt',
    // Standard Webhooks: 410 Gone means the receiver wants no more webhooks from this sender.
    reasonToStop: (failure) => (failure.status === 410 ? 'the receiver returned 410 Gone' : undefined),
    onRetry: (attempt, failure, delayMs) => {
      ctx.logger.warn({ ...ids, attempt, ...failure, retry_in_ms: delayMs }, 'approval webhook delivery failed; retrying');
    },
  });

  if (outcome.delivered) {
    ctx.logger.info({ ...ids, attempt: outcome.attempt }, 'approval webhook delivered');
    return;
  }
  ctx.logger.error({ ...ids, attempt: outcome.attempt, ...outcome.failure }, `approval webhook not delivered; giving up because ${outcome.reason}`);
}

/** Returns the Standard Webhooks headers of one attempt, signed over a fresh timestamp. */
function signatureHeaders(target: WebhookTarget, webhookId: string, body: string): Record<string, string> {
  const timestamp = String(nowSeconds());
  const signature = createHmac('sha256', target.key).update(`${webhookId}.${timestamp}.${body}`).digest('base64');
  return { 'webhook-id': webhookId, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
}

async function approvalRequestedEvent(ctx: Ctx, approval: Approval): Promise<ApprovalRequestedEvent> {
  const [user, agent, resource] = await Promise.all([findUser(ctx, approval.user_id), findClient(ctx, approval.client_id), findResourceById(ctx, approval.resource_id)]);
  return {
    type: 'approval.requested',
    timestamp: new Date(Number(approval.created_at) * 1000).toISOString(),
    data: {
      approval_id: approval.id,
      approval_uri: `${ctx.config.issuer}/approvals/${approval.id}`,
      status: 'pending',
      user: { id: approval.user_id, username: user?.username ?? null },
      agent: { client_id: approval.client_id, name: agent?.name ?? null },
      resource: { id: approval.resource_id, identifier: resource?.identifier ?? null, name: resource?.name ?? null },
      action: approval.action,
      method: approval.method,
      path: approval.path,
      expires_at: new Date(Number(approval.expires_at) * 1000).toISOString(),
    },
  };
}
