import type { ServerContext } from '../../context.ts';
import { findClient } from '../../agents/clients.ts';
import { deliverWithRetries } from '../../http/outbound-delivery.ts';
import { forgetPingSecrets, openPingSecrets, type CibaRequest } from './requests.ts';

/** Deliveries of one ping notification, the first included. */
export const PING_MAX_ATTEMPTS = 4;
/** Delay before the second attempt; each later delay doubles, with up to 20% taken off at random. */
export const PING_FIRST_RETRY_DELAY_MS = 500;
/** Time one attempt may take, response included. */
export const PING_ATTEMPT_TIMEOUT_MS = 5000;

type Ctx = Pick<ServerContext, 'db' | 'tenantId' | 'config' | 'logger' | 'envelope'>;

/**
 * Starts the ping notification (CIBA Core 1.0 §10.2) for a decided request in the background. It
 * returns at once and never throws, so the person's decision does not wait for the agent's
 * endpoint. Poll mode requests have nothing to send.
 */
export function notifyBackchannelDecision(ctx: Ctx, request: CibaRequest): void {
  if (request.delivery_mode !== 'ping') return;
  deliverPing(ctx, request).catch((error: unknown) => {
    ctx.logger.error({ err: { name: (error as Error).name, message: (error as Error).message }, ciba_request: request.id, agent: request.client_id }, 'ping notification failed before delivery');
  });
}

/**
 * Sends `{"auth_req_id": …}` with `Authorization: Bearer <client_notification_token>` to the
 * agent's registered notification endpoint, retrying failures with exponential backoff. Retries
 * stop after PING_MAX_ATTEMPTS attempts, or when the next attempt would start after the request
 * expires, since the agent can no longer redeem it then. A 2xx response is success (CIBA §10.2
 * expects 204 and allows 200); a redirect is a failure and is not followed. Once delivered, the
 * sealed `auth_req_id` and notification token are erased.
 */
async function deliverPing(ctx: Ctx, request: CibaRequest): Promise<void> {
  const ids = { ciba_request: request.id, agent: request.client_id };
  const target = await notificationTarget(ctx, request);
  if (typeof target === 'string') {
    ctx.logger.error(ids, `ping notification not sent: ${target}`);
    return;
  }

  const outcome = await deliverWithRetries({
    url: target.url,
    body: JSON.stringify({ auth_req_id: target.authReqId }),
    headers: () => ({ authorization: `Bearer ${target.notificationToken}` }),
    maxAttempts: PING_MAX_ATTEMPTS,
    firstRetryDelayMs: PING_FIRST_RETRY_DELAY_MS,
    attemptTimeoutMs: PING_ATTEMPT_TIMEOUT_MS,
    deadlineMs: Number(request.expires_at) * 1000,
    deadlineReason: 'the request expires before the next attempt',
    onRetry: (attempt, failure, delayMs) => {
      ctx.logger.warn({ ...ids, receiver: target.origin, attempt, ...failure, retry_in_ms: delayMs }, 'ping notification failed; retrying');
    },
  });

  if (!outcome.delivered) {
    ctx.logger.error({ ...ids, receiver: target.origin, attempt: outcome.attempt, ...outcome.failure }, `ping notification not delivered; giving up because ${outcome.reason}`);
    return;
  }
  await forgetPingSecrets(ctx, request.id);
  ctx.logger.info({ ...ids, receiver: target.origin, attempt: outcome.attempt }, 'ping notification delivered');
}

interface NotificationTarget {
  url: string;
  /** The URL's origin, which logs name instead of the URL. */
  origin: string;
  authReqId: string;
  notificationToken: string;
}

/** Reads where and with what to notify, from the agent's current registration; returns the reason when it cannot. */
async function notificationTarget(ctx: Ctx, request: CibaRequest): Promise<NotificationTarget | string> {
  const client = await findClient(ctx, request.client_id);
  if (client === undefined || client.status !== 'active') return 'the agent is disabled or gone';
  const url = client.backchannel_client_notification_endpoint;
  if (client.backchannel_token_delivery_mode !== 'ping' || url === null || url === undefined) return 'the agent is no longer registered for ping mode';
  if (new URL(url).protocol !== 'https:' && !ctx.config.allowLoopbackUpstreams) return 'the notification endpoint uses http, which needs allowLoopbackUpstreams';

  const secrets = await openPingSecrets(ctx, request);
  if (secrets === undefined) return 'the sealed auth_req_id and notification token cannot be opened';
  return { url, origin: new URL(url).origin, authReqId: secrets.auth_req_id, notificationToken: secrets.client_notification_token };
}
