import type { Envelope } from '../crypto/envelope.ts';

/**
 * Largest request body the approval page shows, and so the largest that a person can approve.
 * The whole body up to this size is stored with the approval. A larger body is stored as its
 * size only, and its approval can only be denied.
 */
export const MAX_PREVIEW_BYTES = 64 * 1024;

/** The stored copy of a request body, shown to the person deciding on the approval. */
export interface BodyPreview {
  /** The whole body, or no bytes when it was larger than MAX_PREVIEW_BYTES. */
  bytes: Buffer;
  /** Size of the whole body; larger than `bytes.length` when the stored copy is not the whole body. */
  totalBytes: number;
  contentType: string | undefined;
}

/**
 * Seals a request body for the approvals table. Bodies may carry personal data, so they are
 * encrypted like credentials, bound to the approval's id. A body larger than MAX_PREVIEW_BYTES
 * is not stored, because the page cannot show it whole and so it cannot be approved.
 */
export async function sealBodyPreview(envelope: Envelope, approvalId: string, body: Buffer, contentType: string | undefined): Promise<string> {
  const stored = body.length <= MAX_PREVIEW_BYTES ? body : Buffer.alloc(0);
  const preview = { bytes: stored.toString('base64'), total_bytes: body.length, content_type: contentType ?? null };
  return envelope.seal(JSON.stringify(preview), `approval:${approvalId}`);
}

/**
 * Opens a sealed preview; undefined when there is none or it cannot be decrypted. Approvals
 * created by earlier versions hold the first 4 KiB of larger bodies; their `totalBytes` shows it.
 */
export async function openBodyPreview(envelope: Envelope, approvalId: string, sealed: string | null): Promise<BodyPreview | undefined> {
  if (sealed === null) return undefined;
  try {
    const preview = JSON.parse(await envelope.open(sealed, `approval:${approvalId}`)) as { bytes: string; total_bytes: number; content_type: string | null };
    return { bytes: Buffer.from(preview.bytes, 'base64'), totalBytes: preview.total_bytes, contentType: preview.content_type ?? undefined };
  } catch {
    return undefined;
  }
}
