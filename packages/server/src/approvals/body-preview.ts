/** Bytes of a request body kept for the approval page. */
export const MAX_PREVIEW_BYTES = 4 * 1024;
const MAX_ENTRIES = 10_000;

/** The start of a request body, shown to the person deciding on the approval. */
export interface BodyPreview {
  bytes: Buffer;
  /** Size of the whole body; larger than `bytes.length` when the preview is truncated. */
  totalBytes: number;
  contentType: string | undefined;
}

/**
 * Request bodies of pending approvals, kept in this process's memory until the approval
 * expires, because the approvals table stores only the body's hash.
 * TODO: store the preview (sealed with the envelope) in the approvals table. Until then a
 * restart or a second server process shows "body not available" on the approval page.
 */
export class BodyPreviewStore {
  readonly #entries = new Map<string, { preview: BodyPreview; expiresAt: number }>();

  put(approvalId: string, body: Buffer, contentType: string | undefined, expiresAt: number): void {
    this.#evictExpired();
    if (this.#entries.size >= MAX_ENTRIES) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    const bytes = Buffer.from(body.subarray(0, MAX_PREVIEW_BYTES));
    this.#entries.set(approvalId, { preview: { bytes, totalBytes: body.length, contentType }, expiresAt });
  }

  get(approvalId: string): BodyPreview | undefined {
    const entry = this.#entries.get(approvalId);
    if (entry === undefined || entry.expiresAt * 1000 <= Date.now()) return undefined;
    return entry.preview;
  }

  #evictExpired(): void {
    const now = Date.now();
    for (const [id, entry] of this.#entries) if (entry.expiresAt * 1000 <= now) this.#entries.delete(id);
  }
}

/** One store per server context, so that test servers in one process do not share previews. */
const stores = new WeakMap<object, BodyPreviewStore>();

export function bodyPreviews(ctx: object): BodyPreviewStore {
  let store = stores.get(ctx);
  if (store === undefined) {
    store = new BodyPreviewStore();
    stores.set(ctx, store);
  }
  return store;
}

/** The preview as readable text: pretty JSON when the whole body parses, the text otherwise. */
export function formatPreview(preview: BodyPreview): { text: string; truncated: boolean; json: boolean } {
  const truncated = preview.totalBytes > preview.bytes.length;
  const text = preview.bytes.toString('utf8');
  if (!truncated) {
    try {
      return { text: JSON.stringify(JSON.parse(text), null, 2), truncated, json: true };
    } catch {
      // Not JSON: shown as text below.
    }
  }
  return { text, truncated, json: false };
}
