import type { ArgumentDeclarations, ArgumentType } from '../policy/arguments.ts';
import { sha256Hex } from '../store/ids.ts';
import { endOfString, isJsonMediaType, parseBindableJson, readRequestArguments } from './arguments.ts';
import { MAX_PREVIEW_BYTES, type BodyPreview } from './body-preview.ts';

const EMPTY_BODY_HASH = sha256Hex('');

/** One top-level member of a JSON object body, as the approval page lists it. */
export interface BodyMember {
  /** The member name as a JSON string literal, so that an empty or blank name stays visible. */
  name: string;
  /**
   * The value as compact JSON text. A string is written as JSON.stringify writes it after
   * unescaping; any other value is written as sent, without whitespace outside strings.
   */
  value: string;
  /** The type the action declares for this member, when it is one of the action's declared arguments. */
  declaredType: ArgumentType | undefined;
  /** Whether the page must show the value whole: true for declared arguments, and for every member when the declarations cannot be read. */
  showInFull: boolean;
}

/** A request body as the person deciding on its approval reads it. Only `not_shown` bodies cannot be approved. */
export type ReadableBody =
  | { kind: 'empty' }
  | {
      kind: 'shown';
      /**
       * `json`: pretty-printed from the parsed value, which the approval binds by its canonical form.
       * `json_as_sent`: JSON that the binding reads as bytes and the page shows as sent. It repeats
       * a member name, has a number that parsers read differently, or nests too deep.
       * `text`: any other UTF-8 text, shown as sent.
       */
      format: 'json' | 'json_as_sent' | 'text';
      /** The whole body. Characters that render invisibly are written as `\uXXXX` escapes inside JSON strings. */
      text: string;
      /** The members of a top-level JSON object in the order sent; undefined for any other body. */
      members: BodyMember[] | undefined;
      /** Whether `text` or `members` write an invisible character of a JSON string as an escape. */
      escapedCharacters: boolean;
      totalBytes: number;
    }
  | { kind: 'not_shown'; reason: string };

/**
 * Control characters (other than tab, line feed and carriage return), format characters such
 * as bidirectional overrides and zero-width spaces, and the line and paragraph separators. They
 * render as nothing or reorder the text around them, so a page showing them cannot be trusted.
 */
const INVISIBLE_CHARACTER = /(?![\t\n\r])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
const HAS_INVISIBLE_CHARACTER = new RegExp(INVISIBLE_CHARACTER.source, 'u');

/**
 * Reads the stored copy of a request body for the person, or returns why it cannot be shown whole:
 * it is lost, larger than MAX_PREVIEW_BYTES, not the body that the approval binds (`bodyHash`,
 * see arguments.ts), not UTF-8, or text with invisible characters. `declarations` are the
 * action's declared arguments, or undefined when they cannot be read, which shows every member
 * value whole.
 *
 * NOTE: characters that look like others (homoglyphs) and blank letters outside the Unicode
 * control and format categories are shown as they are.
 */
export function readableBody(preview: BodyPreview | undefined, bodyHash: string, declarations: ArgumentDeclarations | undefined): ReadableBody {
  if (preview === undefined) {
    if (bodyHash === EMPTY_BODY_HASH) return { kind: 'empty' };
    return { kind: 'not_shown', reason: 'This server no longer has a readable copy of the request body.' };
  }
  if (preview.totalBytes > preview.bytes.length) {
    return { kind: 'not_shown', reason: `The request body is ${preview.totalBytes} bytes, more than the ${MAX_PREVIEW_BYTES} bytes that this page shows in full.` };
  }
  if (readRequestArguments(preview.bytes, preview.contentType).sha256 !== bodyHash) {
    return { kind: 'not_shown', reason: 'The stored copy of the request body does not match the request that the agent made.' };
  }
  if (preview.totalBytes === 0) return { kind: 'empty' };

  let source: string;
  try {
    source = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(preview.bytes);
  } catch {
    return { kind: 'not_shown', reason: `The request body is not UTF-8 text (Content-Type: ${preview.contentType ?? 'none'}), so this page cannot show it.` };
  }

  const bindable = parseBindableJson(preview.bytes, preview.contentType);
  if (bindable !== undefined) return shownJson('json', JSON.stringify(bindable.value, null, 2), source, preview.totalBytes, declarations);
  if (isJsonMediaType(preview.contentType) && isJsonText(source)) return shownJson('json_as_sent', source, source, preview.totalBytes, declarations);

  if (HAS_INVISIBLE_CHARACTER.test(source)) {
    return { kind: 'not_shown', reason: 'The request body contains control characters or invisible formatting characters, which this page cannot show faithfully.' };
  }
  return { kind: 'shown', format: 'text', text: source, members: undefined, escapedCharacters: false, totalBytes: preview.totalBytes };
}

/** Builds a shown JSON body. `text` is what the page shows and `source` the JSON text as sent, from which the members are read. */
function shownJson(format: 'json' | 'json_as_sent', text: string, source: string, totalBytes: number, declarations: ArgumentDeclarations | undefined): ReadableBody {
  let escapedCharacters = false;
  const escape = (jsonText: string): string => {
    const escaped = escapeInvisible(jsonText);
    if (escaped !== jsonText) escapedCharacters = true;
    return escaped;
  };

  const shownText = escape(text);
  const members = topLevelMembers(source)?.map(({ name, value }) => {
    const declaredType = declarations !== undefined && Object.hasOwn(declarations, name) ? declarations[name] : undefined;
    return { name: escape(JSON.stringify(name)), value: escape(value), declaredType, showInFull: declarations === undefined || declaredType !== undefined };
  });
  return { kind: 'shown', format, text: shownText, members, escapedCharacters, totalBytes };
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes each invisible character of JSON text as a `\uXXXX` escape, one per UTF-16 code unit.
 * In JSON they can only occur inside strings, where the escape denotes the same character.
 */
function escapeInvisible(jsonText: string): string {
  return jsonText.replace(INVISIBLE_CHARACTER, (character) => {
    let escaped = '';
    for (let index = 0; index < character.length; index += 1) escaped += `\\u${character.charCodeAt(index).toString(16).padStart(4, '0')}`;
    return escaped;
  });
}

const JSON_WHITESPACE = new Set([' ', '\t', '\n', '\r']);
/** A number, `true`, `false` or `null`. */
const JSON_LITERAL = /[-+.0-9A-Za-z]+/y;

/**
 * Lists the members of the top-level object of JSON text that JSON.parse has accepted, in the
 * order sent and with repeated names kept, or returns undefined when the text is no object.
 * Names are unescaped; values are compact JSON text (see BodyMember).
 */
function topLevelMembers(text: string): { name: string; value: string }[] | undefined {
  let index = skipWhitespace(text, 0);
  if (text[index] !== '{') return undefined;
  index += 1;

  const members: { name: string; value: string }[] = [];
  for (;;) {
    index = skipWhitespace(text, index);
    if (text[index] !== '"') return members;

    const nameEnd = endOfString(text, index);
    const name = JSON.parse(text.slice(index, nameEnd)) as string;
    // Past the colon that separates the name from the value.
    const valueStart = skipWhitespace(text, skipWhitespace(text, nameEnd) + 1);
    const valueEnd = endOfValue(text, valueStart);
    const value = text.slice(valueStart, valueEnd);
    members.push({ name, value: value.startsWith('"') ? JSON.stringify(JSON.parse(value)) : compactJson(value) });

    index = skipWhitespace(text, valueEnd);
    if (text[index] === ',') index += 1;
  }
}

function skipWhitespace(text: string, start: number): number {
  let index = start;
  while (index < text.length && JSON_WHITESPACE.has(text[index] as string)) index += 1;
  return index;
}

/** Returns the index just after the JSON value that starts at `start`. */
function endOfValue(text: string, start: number): number {
  const first = text[start];
  if (first === '"') return endOfString(text, start);
  if (first !== '{' && first !== '[') {
    JSON_LITERAL.lastIndex = start;
    return start + (JSON_LITERAL.exec(text)?.[0].length ?? 0);
  }

  let depth = 0;
  let index = start;
  while (index < text.length) {
    const char = text[index];
    if (char === '"') {
      index = endOfString(text, index);
      continue;
    }
    if (char === '{' || char === '[') depth += 1;
    if (char === '}' || char === ']') depth -= 1;
    index += 1;
    if (depth === 0) return index;
  }
  return index;
}

/** Removes the whitespace outside strings from JSON text, keeping every other character as sent. */
function compactJson(text: string): string {
  let compact = '';
  let index = 0;
  while (index < text.length) {
    const char = text[index] as string;
    if (char === '"') {
      const end = endOfString(text, index);
      compact += text.slice(index, end);
      index = end;
    } else {
      if (!JSON_WHITESPACE.has(char)) compact += char;
      index += 1;
    }
  }
  return compact;
}
