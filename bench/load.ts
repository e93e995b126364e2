import { Pool } from 'undici';

/** One request, sent unchanged on every iteration. */
export interface LoadRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface LoadOptions {
  origin: string;
  request: LoadRequest;
  /** Keep-alive connections, each with one request in flight at a time. */
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Status every response must have; anything else counts as an error. */
  expectedStatus: number;
  /** Upper bound on requests in the measured window, so a run stops even on a very fast server. */
  maxRequests?: number;
}

export interface LoadResult {
  /** Requests that started in the measured window and completed with the expected status. */
  requests: number;
  errors: number;
  /** The first error seen, for the message: a status with the start of its body, or a network error. */
  firstError?: string;
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const DEFAULT_MAX_REQUESTS = 5_000_000;

/**
 * Sends the same request over `connections` keep-alive connections as fast as the server responds
 * (a closed loop): a warm-up that is not recorded, then a measured window. Each latency runs from
 * sending the request to reading the whole response body.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(options.origin, { connections: options.connections, pipelining: 1 });
  const maxRequests = options.maxRequests ?? DEFAULT_MAX_REQUESTS;

  const started = performance.now();
  const measureFrom = started + options.warmupSeconds * 1000;
  const stopAt = measureFrom + options.durationSeconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let lastCompletion = measureFrom;

  async function worker(): Promise<void> {
    while (performance.now() < stopAt && latencies.length + errors < maxRequests) {
      const sentAt = performance.now();
      const outcome = await sendOnce(pool, options.request, options.expectedStatus);
      const completedAt = performance.now();

      if (sentAt < measureFrom) continue;
      lastCompletion = Math.max(lastCompletion, completedAt);
      if (outcome === undefined) {
        latencies.push(completedAt - sentAt);
      } else {
        errors += 1;
        firstError ??= outcome;
      }
    }
  }

  try {
    await Promise.all(Array.from({ length: options.connections }, () => worker()));
  } finally {
    await pool.close();
  }

  const seconds = (lastCompletion - measureFrom) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    seconds,
    requestsPerSecond: seconds > 0 ? latencies.length / seconds : 0,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

/** Sends one request and reads its body. Returns undefined on success, or else a description of the failure. */
async function sendOnce(pool: Pool, request: LoadRequest, expectedStatus: number): Promise<string | undefined> {
  try {
    const response = await pool.request({ method: request.method, path: request.path, headers: request.headers, body: request.body ?? null });
    const body = await response.body.text();
    return response.statusCode === expectedStatus ? undefined : `status ${response.statusCode}: ${body.slice(0, 300)}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

/** Returns the nearest-rank percentile of values sorted in ascending order, or NaN when there are none. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(rank, 1)) - 1] ?? Number.NaN;
}
