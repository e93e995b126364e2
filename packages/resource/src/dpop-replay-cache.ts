/**
 * Stores the `jti` of each accepted DPoP proof until the proof's acceptance
 * window has passed, so that a second use of the same proof is rejected
 * (RFC 9449 §11.1).
 */
export interface DpopReplayCache {
  /**
   * Records `key` until `expiresAt` (seconds since the Unix epoch). Returns
   * false when `key` is already recorded and has not expired, or when the
   * cache cannot record it.
   */
  remember(key: string, expiresAt: number): boolean | Promise<boolean>;
}

const DEFAULT_MAX_ENTRIES = 100_000;

/**
 * A DpopReplayCache in the memory of one process. It holds at most
 * `maxEntries` unexpired proofs and, when full, rejects new proofs until
 * entries expire, rather than evicting one that could then be replayed.
 *
 * Each process has its own cache, so with several processes or hosts behind
 * a load balancer a proof replayed to another process is accepted. Such
 * deployments should pass a DpopReplayCache backed by a shared store
 * (for example Redis `SET key 1 NX EXAT expiresAt`).
 */
export class MemoryDpopReplayCache implements DpopReplayCache {
  readonly #maxEntries: number;
  readonly #expiries = new Map<string, number>();
  #lastSweep = 0;

  constructor(options: { maxEntries?: number } = {}) {
    const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new TypeError(`maxEntries must be a positive integer, got ${String(maxEntries)}`);
    }
    this.#maxEntries = maxEntries;
  }

  /** Number of entries held, including expired ones not yet removed. */
  get size(): number {
    return this.#expiries.size;
  }

  remember(key: string, expiresAt: number): boolean {
    const now = Math.floor(Date.now() / 1000);

    const existing = this.#expiries.get(key);
    if (existing !== undefined && existing >= now) {
      return false;
    }

    // A full cache is swept at most once a second, so a flood of requests
    // against a cache full of unexpired entries does not scan it every time.
    if (this.#expiries.size >= this.#maxEntries && now > this.#lastSweep) {
      this.#lastSweep = now;
      this.#removeExpired(now);
    }
    if (this.#expiries.size >= this.#maxEntries) {
      return false;
    }

    this.#expiries.set(key, expiresAt);
    return true;
  }

  #removeExpired(now: number): void {
    for (const [key, expiresAt] of this.#expiries) {
      if (expiresAt < now) {
        this.#expiries.delete(key);
      }
    }
  }
}
