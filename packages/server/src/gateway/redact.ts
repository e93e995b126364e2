export const REDACTED = '[redacted]';

/**
 * The forms in which an upstream could echo a credential: as sent, percent-encoded, and
 * JSON-escaped. Longer forms come first so that a shorter form inside them does not leave a
 * partial match behind.
 * NOTE: other encodings (base64, HTML entities, split across chunked fields) are not detected.
 */
export function credentialForms(credential: string): string[] {
  const forms = new Set([credential, encodeURIComponent(credential), JSON.stringify(credential).slice(1, -1)]);
  return [...forms].filter((form) => form !== '').sort((a, b) => b.length - a.length);
}

/** Replaces every occurrence of each form in a body with `[redacted]`. */
export function redactBuffer(body: Buffer, forms: string[]): Buffer {
  let result = body;
  for (const form of forms) result = replaceAllBytes(result, Buffer.from(form, 'utf8'), Buffer.from(REDACTED, 'utf8'));
  return result;
}

/** Replaces every occurrence of each form in a header value with `[redacted]`. */
export function redactText(value: string, forms: string[]): string {
  let result = value;
  for (const form of forms) result = result.split(form).join(REDACTED);
  return result;
}

function replaceAllBytes(haystack: Buffer, needle: Buffer, replacement: Buffer): Buffer {
  let index = haystack.indexOf(needle);
  if (index === -1) return haystack;

  const parts: Buffer[] = [];
  let start = 0;
  while (index !== -1) {
    parts.push(haystack.subarray(start, index), replacement);
    start = index + needle.length;
    index = haystack.indexOf(needle, start);
  }
  parts.push(haystack.subarray(start));
  return Buffer.concat(parts);
}
