import type { Envelope } from '../crypto/envelope.ts';
import { parseBindableJson } from './arguments.ts';

/** Bytes of a request body kept for the approval page. */
export const MAX_PREVIEW_BYTES = 4 * 1024;

/** The start of a request body, shown to the person deciding on the approval. */
export interface BodyPreview {
  bytes: Buffer;
  /** Size of the whole body; larger than `bytes.length` when the preview is truncated. */
  totalBytes: number;
  contentType: string | undefined;
}

/**
 * Seals the start of a request body for the approvals table. Bodies may carry personal data,
 * so they are encrypted like credentials, bound to the approval's id.
 */
export async function sealBodyPreview(envelope: Envelope, approvalId: string, body: Buffer, contentType: string | undefined): Promise<string> {
  const preview = { bytes: body.subarray(0, MAX_PREVIEW_BYTES).toString('base64'), total_bytes: body.length, content_type: contentType ?? null };
  return envelope.seal(JSON.stringify(preview), `approval:${approvalId}`);
}

/** Opens a sealed preview; undefined when there is none or it cannot be decrypted. */
export async function openBodyPreview(envelope: Envelope, approvalId: string, sealed: string | null): Promise<BodyPreview | undefined> {
  if (sealed === null) return undefined;
  try {
    const preview = JSON.parse(await envelope.open(sealed, `approval:${approvalId}`)) as { bytes: string; total_bytes: number; content_type: string | null };
    return { bytes: Buffer.from(preview.bytes, 'base64'), totalBytes: preview.total_bytes, contentType: preview.content_type ?? undefined };
  } catch {
    return undefined;
  }
}

/**
 * Formats the preview as readable text: pretty JSON when the whole body is JSON that the approval
 * binds by its canonical form, and the body's own text otherwise. The page then shows the
 * arguments exactly as the binding reads them, so a duplicated member name is shown as sent.
 */
export function formatPreview(preview: BodyPreview): { text: string; truncated: boolean; json: boolean } {
  const truncated = preview.totalBytes > preview.bytes.length;
  if (!truncated) {
    const parsed = parseBindableJson(preview.bytes, preview.contentType);
    if (parsed !== undefined) return { text: JSON.stringify(parsed.value, null, 2), truncated, json: true };
  }
  return { text: preview.bytes.toString('utf8'), truncated, json: false };
}
