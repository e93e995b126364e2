/**
 * Typed arguments of a resource action. An action declares which top-level fields of a call's
 * JSON body policies may read, and the Cedar type of each. Only declared arguments reach Cedar.
 */

import { isWellFormedText } from '../http/well-formed-text.ts';

export const ARGUMENT_TYPES = ['String', 'Long', 'Boolean'] as const;
export type ArgumentType = (typeof ARGUMENT_TYPES)[number];

/** Argument name → Cedar type. */
export type ArgumentDeclarations = Readonly<Record<string, ArgumentType>>;

/** A value Cedar receives for a declared argument. */
export type ArgumentValue = string | number | boolean;

/** Identifiers and reserved words of the Cedar grammar (Cedar 4 language reference, "Grammar"). */
export const ARGUMENT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const CEDAR_RESERVED_WORDS = new Set(['true', 'false', 'if', 'then', 'else', 'in', 'is', 'like', 'has', '__cedar']);

/** Maximum number of arguments one action may declare. */
export const MAX_DECLARED_ARGUMENTS = 50;

/**
 * Reads the `arguments` column of a resource action. Null means none. Anything that is not an
 * object of valid names and types throws, so a damaged row denies the call instead of letting
 * arguments through unchecked.
 */
export function parseArgumentDeclarations(text: string | null | undefined): ArgumentDeclarations {
  if (text === null || text === undefined) return {};

  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('The stored argument declarations are not a JSON object.');

  const declarations: Record<string, ArgumentType> = Object.create(null) as Record<string, ArgumentType>;
  for (const [name, type] of Object.entries(value)) {
    if (!isArgumentName(name)) throw new Error(`The stored argument name ${JSON.stringify(name)} is not a valid argument name.`);
    if (!(ARGUMENT_TYPES as readonly unknown[]).includes(type)) throw new Error(`The stored argument ${name} has the unknown type ${JSON.stringify(type)}.`);
    declarations[name] = type as ArgumentType;
  }
  return declarations;
}

/** Serializes declarations for the `arguments` column, where no declarations are stored as null. */
export function serializeArgumentDeclarations(declarations: ArgumentDeclarations | undefined): string | null {
  if (declarations === undefined || Object.keys(declarations).length === 0) return null;
  return JSON.stringify(declarations);
}

/**
 * Accepts Cedar identifiers that are not reserved words. Names starting with `__` are refused
 * too: Cedar reserves `__cedar`, and `__proto__` would set an object's prototype in JavaScript
 * instead of declaring an argument.
 */
export function isArgumentName(name: string): boolean {
  return ARGUMENT_NAME.test(name) && !CEDAR_RESERVED_WORDS.has(name) && !name.startsWith('__');
}

/** The declared arguments of one call, checked against their types. */
export interface BoundArguments {
  /** Declared arguments present with the declared type. */
  values: Record<string, ArgumentValue>;
  /** One message per declared argument present with another type or more than once. */
  typeErrors: string[];
}

/** A JSON number written as an integer: no fraction, no exponent (RFC 8259 §6 grammar). */
const INTEGER_LITERAL = /^-?(?:0|[1-9][0-9]*)$/;

/** Maximum length of a number literal that a type error message quotes. */
const MAX_QUOTED_LITERAL = 40;

/**
 * Picks the declared arguments out of a call's arguments and checks each against its type.
 * Undeclared arguments are left out. A declared argument of the wrong type is reported, never
 * dropped: dropping it would hide it from a policy that forbids on its value. So is a declared
 * argument named more than once (`duplicateNames`), whose value depends on the parser.
 *
 * A Long must be a safe integer (|n| ≤ 2^53 − 1, inside Cedar's 64-bit range), because a larger
 * JSON number has already lost precision in JavaScript and Cedar would compare another value
 * than the one the upstream reads. When `numberLiterals` has the source text of a number member
 * (the gateway reads it from the body), a Long must also be written as an integer literal,
 * without fraction or exponent. JSON.parse reads `1e3` and `1000.0` as 1000, but an upstream that
 * parses integers strictly may reject them or read another value. Arguments that did not come
 * from JSON text (AuthZEN, CIBA, replay) are checked by value only.
 */
export function bindArguments(
  declarations: ArgumentDeclarations,
  provided: Readonly<Record<string, unknown>> | undefined,
  duplicateNames: readonly string[] = [],
  numberLiterals?: ReadonlyMap<string, string>,
): BoundArguments {
  const values: Record<string, ArgumentValue> = {};
  const typeErrors: string[] = [];
  if (provided === undefined) return { values, typeErrors };

  const namesByLooseName = looseNameGroups(provided);
  for (const [name, type] of Object.entries(declarations)) {
    // Some JSON decoders match member names without regard to case (Go's encoding/json, for
    // one), and others cut names at NUL, trim them or normalize Unicode, so `AMOUNT`, `amount `
    // or a full-width `ａmount` next to `amount` could be the value an upstream acts on.
    const variants = (namesByLooseName.get(looseName(name)) ?? []).filter((other) => other !== name);
    if (variants.length > 0) {
      typeErrors.push(`argument ${name} also occurs as ${variants.map((variant) => JSON.stringify(variant)).join(', ')}, which some JSON decoders read as the same member`);
      continue;
    }
    if (!Object.hasOwn(provided, name)) continue;
    if (duplicateNames.includes(name)) {
      typeErrors.push(`argument ${name} occurs more than once in the JSON body`);
      continue;
    }

    const value = provided[name];
    if (typeof value === 'string' && CONTROL_CHARACTER.test(value)) {
      typeErrors.push(`argument ${name} contains a control character other than tab, line feed or carriage return, which decoders may cut the value at`);
      continue;
    }
    if (typeof value === 'string' && !isWellFormedText(value)) {
      typeErrors.push(`argument ${name} contains a lone UTF-16 surrogate, which is not text and which decoders replace or reject`);
      continue;
    }
    const literal = type === 'Long' ? numberLiterals?.get(name) : undefined;
    if (matchesType(value, type, literal)) values[name] = value;
    else typeErrors.push(`argument ${name} must be a ${describeType(type)}, not ${describeValue(value, type, literal)}`);
  }
  return { values, typeErrors };
}

/** C0 controls and DEL, except tab, line feed and carriage return. */
const CONTROL_CHARACTER = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/**
 * Member names of argument objects grouped by `looseName`. The items of an AuthZEN batch share
 * the request's default `context.arguments` object, so it is grouped once for all of them.
 * Argument objects come from parsed JSON and are never changed afterwards.
 */
const groupsByArguments = new WeakMap<object, Map<string, string[]>>();

/** Returns the member names of `provided` grouped by `looseName`, each name normalized once. */
function looseNameGroups(provided: Readonly<Record<string, unknown>>): Map<string, string[]> {
  const known = groupsByArguments.get(provided);
  if (known !== undefined) return known;

  const groups = new Map<string, string[]>();
  for (const name of Object.keys(provided)) {
    const key = looseName(name);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [name]);
    else group.push(name);
  }
  groupsByArguments.set(provided, groups);
  return groups;
}

/** Returns a member name as the most lenient decoder reads it: cut at NUL, NFKC-normalized, lower case, trimmed. */
function looseName(name: string): string {
  const nul = name.indexOf('\u0000');
  return (nul === -1 ? name : name.slice(0, nul)).normalize('NFKC').toLowerCase().trim();
}

function matchesType(value: unknown, type: ArgumentType, literal: string | undefined): value is ArgumentValue {
  switch (type) {
    case 'String':
      return typeof value === 'string';
    case 'Long':
      return typeof value === 'number' && Number.isSafeInteger(value) && (literal === undefined || INTEGER_LITERAL.test(literal));
    case 'Boolean':
      return typeof value === 'boolean';
  }
}

function describeType(type: ArgumentType): string {
  switch (type) {
    case 'String':
      return 'JSON string';
    case 'Long':
      return 'JSON integer between -(2^53 - 1) and 2^53 - 1, written without a fraction or exponent';
    case 'Boolean':
      return 'JSON boolean';
  }
}

/** Describes a value of the wrong type. For a Long, a number is described against the Long's range and form. */
function describeValue(value: unknown, type: ArgumentType, literal: string | undefined): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number' && type !== 'Long') return 'a number';
  if (typeof value === 'number') {
    if (literal !== undefined && !INTEGER_LITERAL.test(literal) && Number.isSafeInteger(value)) return `${quoteLiteral(literal)}, which has a fraction or exponent`;
    if (!Number.isFinite(value)) return 'a number outside that range';
    return Number.isInteger(value) ? 'an integer outside that range' : 'a number that is not an integer';
  }
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

function quoteLiteral(literal: string): string {
  return literal.length > MAX_QUOTED_LITERAL ? `${literal.slice(0, MAX_QUOTED_LITERAL)}…` : literal;
}
