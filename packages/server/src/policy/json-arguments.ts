/** The arguments of a call as the gateway reads them from its body. */
export interface CallArguments {
  /** The top-level members of a JSON object body, or undefined for any other body. */
  values?: Record<string, unknown>;
  /** Member names that occur more than once in the body's top-level object. */
  duplicateNames: string[];
  /** True when the call has a body that is not a JSON object with a JSON content type. */
  unreadable?: boolean;
  /** Reason the body is unreadable, in words an agent's developer can act on. */
  unreadableReason?: string;
  /** Source text of each top-level number member, for the Long check (`1e3` is not a Long). */
  numberLiterals?: ReadonlyMap<string, string>;
}

const NO_ARGUMENTS: CallArguments = { duplicateNames: [] };

/** Maximum length of the part of a client's Content-Type field that a reason quotes. */
const MAX_QUOTED_LENGTH = 40;

/**
 * Reads a call's arguments: the members of the body's top-level object when the content type
 * is JSON (`application/json` or a `+json` type, RFC 6839 §3.1) and the body is UTF-8 JSON. An
 * empty body gives no arguments. Any other body is marked unreadable, because the upstream may
 * still read arguments from it that no policy has seen:
 *
 * - a missing, malformed or non-JSON Content-Type;
 * - a `charset` parameter other than `utf-8`, or more than one. RFC 8259 §11 defines no charset
 *   for application/json and requires UTF-8 (§8.1), but an upstream that honors the label would
 *   decode `charset=utf-16` differently from the UTF-8 reading that the policy judged;
 * - a body that starts with a UTF-8 byte order mark. RFC 8259 §8.1 forbids sending one and lets
 *   a parser either skip it or reject the text, so the upstream may reject what the policy read.
 *   The approval binding (approvals/arguments.ts) does not read such a body as JSON either;
 * - invalid UTF-8, invalid JSON, or a top-level array, string or number.
 *
 * RFC 8259 §4 leaves duplicate member names to the parser: JSON.parse keeps the last, other
 * parsers keep the first. The duplicated names are returned so that a policy never judges
 * one value while the upstream acts on another. The source text of each top-level number is
 * returned for the Long check.
 */
export function jsonBodyArguments(contentType: string | undefined, body: Buffer): CallArguments {
  if (body.length === 0) return NO_ARGUMENTS;

  const problem = jsonContentTypeProblem(contentType) ?? (hasUtf8ByteOrderMark(body) ? 'the body starts with a UTF-8 byte order mark, which JSON sent over a network must not have (RFC 8259 §8.1)' : undefined);
  if (problem !== undefined) return unreadable(problem);

  let text: string;
  let parsed: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    return unreadable('the body is not valid UTF-8');
  }
  try {
    parsed = JSON.parse(text);
  } catch {
    return unreadable('the body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return unreadable('the body is JSON but not a JSON object');

  const values = parsed as Record<string, unknown>;
  const members = topLevelMembers(text);
  const numberLiterals = new Map(members.flatMap((member) => (member.numberLiteral === undefined ? [] : [[member.name, member.numberLiteral] as const])));
  return { values, duplicateNames: duplicates(members.map((member) => member.name)), numberLiterals };
}

function unreadable(reason: string): CallArguments {
  return { duplicateNames: [], unreadable: true, unreadableReason: reason };
}

function hasUtf8ByteOrderMark(body: Buffer): boolean {
  return body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
}

/** Returns why a Content-Type field does not label a UTF-8 JSON body, or undefined when it does. */
export function jsonContentTypeProblem(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return 'the request has a body but no Content-Type field';

  const mediaType = parseMediaType(contentType);
  if (mediaType === undefined) return `the Content-Type field ${quote(contentType)} is not a valid media type`;
  if (!isJsonMediaType(mediaType.essence)) return `the Content-Type ${quote(mediaType.essence)} is not a JSON media type`;

  // RFC 2231 `charset*=utf-16''` names a charset as well, for recipients that read extended parameters.
  const charsets = mediaType.parameters.filter(([name]) => name === 'charset' || name === 'charset*').map(([, value]) => value);
  if (charsets.length > 1) return 'the Content-Type field has more than one charset parameter';
  const [charset] = charsets;
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8') {
    return `the Content-Type names charset ${quote(charset)}, but a JSON body must be UTF-8; send it with charset=utf-8 or without a charset`;
  }
  return undefined;
}

function isJsonMediaType(essence: string): boolean {
  return essence === 'application/json' || /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+\+json$/.test(essence);
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const ESSENCE = new RegExp(`^[ \\t]*(${TOKEN}/${TOKEN})`);
/** One `; name=value` of RFC 9110 §5.6.6, where the name and value may be left out (`;;`). */
const PARAMETER = new RegExp(`[ \\t]*;[ \\t]*(?:(${TOKEN})=(${TOKEN}|"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"))?`, 'y');

/**
 * Parses a Content-Type field (RFC 9110 §8.3.1): the lower-case `type/subtype` and the
 * parameters in order, names in lower case and quoted values unquoted. Returns undefined for a
 * field that does not follow the grammar, because recipients disagree on how to read one.
 */
export function parseMediaType(field: string): { essence: string; parameters: Array<[string, string]> } | undefined {
  const essence = ESSENCE.exec(field);
  if (essence?.[1] === undefined) return undefined;

  const parameters: Array<[string, string]> = [];
  let index = essence[0].length;
  for (;;) {
    PARAMETER.lastIndex = index;
    const match = PARAMETER.exec(field);
    if (match === null) break;
    const [whole, name, value] = match;
    if (name !== undefined && value !== undefined) parameters.push([name.toLowerCase(), value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value]);
    index += whole.length;
  }
  if (!/^[ \t]*$/.test(field.slice(index))) return undefined;
  return { essence: essence[1].toLowerCase(), parameters };
}

function quote(text: string): string {
  return JSON.stringify(text.length > MAX_QUOTED_LENGTH ? `${text.slice(0, MAX_QUOTED_LENGTH)}…` : text);
}

/** A member of the top-level object, with the source text of its value when that is a number. */
interface TopLevelMember {
  name: string;
  numberLiteral?: string;
}

/** A JSON number (RFC 8259 §6), matched where it starts. */
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * Lists the members of the top-level object of a JSON text that JSON.parse has already
 * accepted, in order and with repeats, and the source text of each number value. Because the
 * text is valid JSON, only strings and nesting need tracking. A string directly inside the
 * top-level object that follows `{` or `,` is a member name. A number directly after the `:`
 * that follows the name is that member's value. Digits inside strings are skipped with the string.
 */
function topLevelMembers(text: string): TopLevelMember[] {
  const members: TopLevelMember[] = [];
  let depth = 0;
  let expectName = false;
  let valueOf: TopLevelMember | undefined;

  let index = 0;
  while (index < text.length) {
    const char = text[index] as string;
    if (char === '"') {
      const end = closingQuote(text, index);
      if (depth === 1 && expectName) members.push({ name: JSON.parse(text.slice(index, end + 1)) as string });
      expectName = false;
      valueOf = undefined;
      index = end + 1;
    } else if (char === '-' || (char >= '0' && char <= '9')) {
      NUMBER.lastIndex = index;
      const literal = NUMBER.exec(text)?.[0] ?? char;
      if (valueOf !== undefined) valueOf.numberLiteral = literal;
      valueOf = undefined;
      index += literal.length;
    } else {
      if (char === '{' || char === '[') {
        depth += 1;
        expectName = depth === 1 && char === '{';
      } else if (char === '}' || char === ']') {
        depth -= 1;
      } else if (char === ',' && depth === 1) {
        expectName = true;
      } else if (char === ':' && depth === 1) {
        valueOf = members.at(-1);
      }
      // Whitespace keeps a pending value. Any other character starts a value that is not a number.
      if (char !== ' ' && char !== '\t' && char !== '\n' && char !== '\r' && char !== ':') valueOf = undefined;
      index += 1;
    }
  }
  return members;
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
