/** The arguments of a call as the gateway reads them from its body. */
export interface CallArguments {
  /** The top-level members of a JSON object body, or undefined for any other body. */
  values?: Record<string, unknown>;
  /** Member names that occur more than once in the body's top-level object. */
  duplicateNames: string[];
  /** True when the call has a body that is not a JSON object with a JSON content type. */
  unreadable?: boolean;
}

const NO_ARGUMENTS: CallArguments = { duplicateNames: [] };
const UNREADABLE: CallArguments = { duplicateNames: [], unreadable: true };

/**
 * Reads a call's arguments: the members of the body's top-level object when the content type
 * is JSON (`application/json` or a `+json` type, RFC 6839 §3.1) and the body is UTF-8 JSON.
 * RFC 8259 §8.1 lets a parser skip a byte order mark, and this one does. An empty body gives no
 * arguments. Any other body, an unparsable one, or a top-level array, string or number is marked
 * unreadable, because the upstream may still read arguments from it that no policy has seen.
 *
 * RFC 8259 §4 leaves duplicate member names to the parser: JSON.parse keeps the last, other
 * parsers keep the first. The duplicated names are returned so that a policy never judges
 * one value while the upstream acts on another.
 */
export function jsonBodyArguments(contentType: string | undefined, body: Buffer): CallArguments {
  if (body.length === 0) return NO_ARGUMENTS;
  if (contentType === undefined || !isJsonMediaType(contentType)) return UNREADABLE;

  let text: string;
  let parsed: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    parsed = JSON.parse(text);
  } catch {
    return UNREADABLE;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return UNREADABLE;

  return { values: parsed as Record<string, unknown>, duplicateNames: duplicates(topLevelMemberNames(text)) };
}

function isJsonMediaType(contentType: string): boolean {
  const essence = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return essence === 'application/json' || /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+\+json$/.test(essence);
}

/**
 * Lists the member names of the top-level object of a JSON text that JSON.parse has already
 * accepted, in order and with repeats. Only strings and nesting need tracking: in valid JSON a
 * string directly inside the top-level object that follows `{` or `,` is a member name.
 */
function topLevelMemberNames(text: string): string[] {
  const names: string[] = [];
  let depth = 0;
  let expectName = false;

  for (let index = 0; index < text.length; index += 1) {
    const char = text[index];
    if (char === '"') {
      const end = closingQuote(text, index);
      if (depth === 1 && expectName) names.push(JSON.parse(text.slice(index, end + 1)) as string);
      expectName = false;
      index = end;
    } else if (char === '{' || char === '[') {
      depth += 1;
      expectName = depth === 1 && char === '{';
    } else if (char === '}' || char === ']') {
      depth -= 1;
    } else if (char === ',' && depth === 1) {
      expectName = true;
    }
  }
  return names;
}

/** Index of the quote that closes the string starting at `start`, skipping escaped characters. */
function closingQuote(text: string, start: number): number {
  let index = start + 1;
  while (index < text.length && text[index] !== '"') index += text[index] === '\\' ? 2 : 1;
  return index;
}

function duplicates(names: string[]): string[] {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) repeated.add(name);
    seen.add(name);
  }
  return [...repeated];
}
