/**
 * Delivery of a JSON POST that Mandate sends on its own (the approval webhook, the CIBA ping
 * notification), with bounded retries. An attempt succeeds on a 2xx response. A redirect counts as
 * a failure and is not followed, so the message never goes to an address other than the one
 * configured or registered. Failed attempts are retried with exponential backoff and jitter until
 * one of the caller's limits stops them.
 */

/** The result of a failed attempt: the HTTP status of the response, or the fetch error's name and code. */
export interface DeliveryFailure {
  status?: number;
  error?: string;
}

export interface OutboundDelivery {
  url: string;
  /** JSON text of the request body. */
  body: string;
  /** Builds the headers of one attempt besides `content-type` and `user-agent`. It runs before each attempt, so a signature can cover a fresh timestamp. */
  headers: () => Record<string, string>;
  /** Deliveries of the message, the first included. */
  maxAttempts: number;
  /** Delay before the second attempt; each later delay doubles, with up to 20% taken off at random. */
  firstRetryDelayMs: number;
  /** Time one attempt may take, response included. */
  attemptTimeoutMs: number;
  /** Unix time in milliseconds after which the message is of no use: no retry starts at or after it. */
  deadlineMs: number;
  /** Reason for stopping, for the caller's log, when the next retry would start at or after `deadlineMs`. */
  deadlineReason: string;
  /** Returns why a failed attempt ends delivery before the other limits do, or undefined to let them decide. */
  reasonToStop?: (failure: DeliveryFailure) => string | undefined;
  /** Runs after each failed attempt that will be retried, before the delay, so the caller can log it. */
  onRetry: (attempt: number, failure: DeliveryFailure, delayMs: number) => void;
}

/** The end of a delivery: the attempt that succeeded, or the last failure and why no retry followed it. */
export type DeliveryOutcome = { delivered: true; attempt: number } | { delivered: false; attempt: number; failure: DeliveryFailure; reason: string };

/**
 * POSTs the message, retrying failures with exponential backoff. Retries stop when the caller's
 * `reasonToStop` names a reason, after `maxAttempts` attempts, or when the next attempt would
 * start at or after `deadlineMs`, checked in that order. It throws only when `headers` or
 * `onRetry` throws.
 */
export async function deliverWithRetries(delivery: OutboundDelivery): Promise<DeliveryOutcome> {
  for (let attempt = 1; ; attempt += 1) {
    const failure = await attemptDelivery(delivery);
    if (failure === undefined) return { delivered: true, attempt };

    const delayMs = retryDelayMs(delivery.firstRetryDelayMs, attempt);
    const reason = reasonToStop(delivery, failure, attempt, Date.now() + delayMs >= delivery.deadlineMs);
    if (reason !== undefined) return { delivered: false, attempt, failure, reason };

    delivery.onRetry(attempt, failure, delayMs);
    await sleep(delayMs);
  }
}

/** Sends one attempt and returns undefined on a 2xx response, or what failed. */
async function attemptDelivery(delivery: OutboundDelivery): Promise<DeliveryFailure | undefined> {
  let response: Response;
  try {
    response = await fetch(delivery.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'Mandate', ...delivery.headers() },
      body: delivery.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(delivery.attemptTimeoutMs),
    });
  } catch (error) {
    return { error: describeFetchError(error) };
  }

  await response.body?.cancel().catch(() => undefined);
  return response.status >= 200 && response.status < 300 ? undefined : { status: response.status };
}

/** Returns why delivery stops after a failed attempt, or undefined when it retries. */
function reasonToStop(delivery: OutboundDelivery, failure: DeliveryFailure, attempt: number, deadlineFirst: boolean): string | undefined {
  const callerReason = delivery.reasonToStop?.(failure);
  if (callerReason !== undefined) return callerReason;
  if (attempt >= delivery.maxAttempts) return `${attempt} attempts failed`;
  if (deadlineFirst) return delivery.deadlineReason;
  return undefined;
}

/** Returns the delay after a failed attempt: exponential backoff with jitter, so recovering receivers are not hit in step. */
function retryDelayMs(firstRetryDelayMs: number, attempt: number): number {
  const base = firstRetryDelayMs * 2 ** (attempt - 1);
  return Math.round(base * (1 - 0.2 * Math.random()));
}

/** Names a failed fetch by error name and code, never by URL, because the URL may carry a secret. */
function describeFetchError(error: unknown): string {
  const name = error instanceof Error ? error.name : 'Error';
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  return typeof cause?.code === 'string' ? `${name} ${cause.code}` : name;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    // Unreferenced, so a pending retry does not keep a stopping process alive.
    setTimeout(resolve, ms).unref();
  });
}
