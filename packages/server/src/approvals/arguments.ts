import { canonicalJson } from '../util/canonical-json.ts';
import { jsonContentTypeProblem } from '../policy/json-arguments.ts';
import { sha256Hex } from '../store/ids.ts';
import { mediaTypeEssence } from '../http/media-type.ts';

/** Deepest nesting of objects and arrays that a JSON body may have and still be bound by its canonical form. */
export const MAX_JSON_DEPTH = 64;

/**
 * The arguments of a gateway request, as an approval binds them. A JSON body is bound by its
 * RFC 8785 canonical form, so whitespace and member order do not matter but every value does.
 * Any other body is bound by its exact bytes. The media type is bound too, because the same
 * bytes mean different things as `application/merge-patch+json` and `application/json-patch+json`.
 */
export interface RequestArguments {
  form: 'json' | 'raw';
  /**
   * Form `json`: the lower-case media type without parameters, since JSON is always UTF-8.
   * Form `raw`: the Content-Type field exactly as sent, or empty without one.
   */
  mediaType: string;
  /** Hex SHA-256 of the canonical JSON text (form `json`) or of the body bytes (form `raw`). */
  sha256: string;
}

/** Reads the arguments of a request body for its approval binding. */
export function readRequestArguments(body: Buffer, contentType: string | undefined): RequestArguments {
  const parsed = parseBindableJson(body, contentType);
  if (parsed === undefined) return { form: 'raw', mediaType: contentType?.trim() ?? '', sha256: sha256Hex(body) };
  return { form: 'json', mediaType: mediaTypeEssence(contentType ?? ''), sha256: sha256Hex(canonicalJson(parsed.value)) };
}

/**
 * Parses a JSON body when its canonical form means the same values to every JSON parser, and
 * returns undefined otherwise, so that the caller binds the raw bytes instead. The media type
 * must be JSON, and the body UTF-8 without a byte order mark (RFC 8259 §8.1) that parses. Its
 * objects must not repeat a member name, because RFC 8785 §3.1 requires I-JSON (RFC 7493). Every
 * number must be exactly the IEEE 754 double it is read as. Without the last two checks,
 * `{"to":"bob","to":"eve"}` or a 20-digit amount could be approved as one value and read by the
 * upstream as another.
 */
export function parseBindableJson(body: Buffer, contentType: string | undefined): { value: unknown } | undefined {
  // A JSON type labeled with another charset is bound by its bytes and its whole Content-Type,
  // because the upstream may decode it differently from the UTF-8 reading shown to the person.
  if (!isJsonMediaType(contentType) || jsonContentTypeProblem(contentType) !== undefined) return undefined;

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    return undefined;
  }

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return hasOnlyExactMembers(text) ? { value } : undefined;
}

/** Returns true for `application/json` and any `+json` structured syntax suffix (RFC 6839 §3.1), with any parameters. */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const essence = mediaTypeEssence(contentType);
  return essence === 'application/json' || /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+\+json$/.test(essence);
}

interface ObjectFrame {
  names: Set<string>;
  /** Whether the next string in this object is a member name. */
  expectName: boolean;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Scans JSON text that JSON.parse has accepted, and returns false when an object repeats a member
 * name, a number is not exact, or the nesting is deeper than MAX_JSON_DEPTH.
 */
function hasOnlyExactMembers(text: string): boolean {
  const frames: (ObjectFrame | null)[] = [];
  let index = 0;
  while (index < text.length) {
    const char = text[index] as string;
    const frame = frames.at(-1);

    if (char === '{' || char === '[') {
      frames.push(char === '{' ? { names: new Set(), expectName: true } : null);
      if (frames.length > MAX_JSON_DEPTH) return false;
      index += 1;
    } else if (char === '}' || char === ']') {
      frames.pop();
      index += 1;
    } else if (char === ',' || char === ':') {
      if (frame !== undefined && frame !== null) frame.expectName = char === ',';
      index += 1;
    } else if (char === '"') {
      const end = endOfString(text, index);
      if (frame !== undefined && frame !== null && frame.expectName) {
        // Names compare after unescaping: "a" and "\u0061" are the same member.
        const name = JSON.parse(text.slice(index, end)) as string;
        if (frame.names.has(name)) return false;
        frame.names.add(name);
      }
      index = end;
    } else if (char === '-' || (char >= '0' && char <= '9')) {
      NUMBER.lastIndex = index;
      const literal = NUMBER.exec(text)?.[0] ?? '';
      if (!isExactNumber(literal)) return false;
      index += literal.length;
    } else {
      // Whitespace and the letters of true, false and null.
      index += 1;
    }
  }
  return true;
}

/** Returns the index just after the closing quote of the string that starts at `start`. */
export function endOfString(text: string, start: number): number {
  let index = start + 1;
  while (index < text.length) {
    const char = text[index];
    if (char === '\\') index += 2;
    else if (char === '"') return index + 1;
    else index += 1;
  }
  return index;
}

/**
 * Returns true when the decimal value of a JSON number literal equals the shortest decimal form
 * of the double it parses to (ECMAScript Number::toString, which RFC 8785 §3.2.2.3 uses). Every
 * double has one such form, so two accepted literals with the same canonical text denote the
 * same decimal value. `1.50` and `15e-1` pass; `0.10000000000000001` (read as 0.1),
 * 9007199254740993 (read as ...992), `-0` and `1e400` do not.
 */
function isExactNumber(literal: string): boolean {
  const value = Number(literal);
  if (!Number.isFinite(value)) return false;

  const written = decimalParts(literal);
  const parsed = decimalParts(String(value));
  return written !== undefined && parsed !== undefined && written.sign === parsed.sign && written.digits === parsed.digits && written.exponent === parsed.exponent;
}

/** Splits a decimal numeral into sign, significant digits without leading or trailing zeros, and the power of ten. */
function decimalParts(numeral: string): { sign: string; digits: string; exponent: number } | undefined {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(numeral);
  if (match === null) return undefined;
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = match;

  const digits = `${whole}${fraction}`.replace(/^0+/, '');
  if (digits === '') return { sign, digits: '', exponent: 0 };
  const significant = digits.replace(/0+$/, '');
  return { sign, digits: significant, exponent: Number(exponent) - fraction.length + (digits.length - significant.length) };
}
