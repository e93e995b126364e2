import { parseBindableJson } from '../../approvals/arguments.ts';
import { canonicalJson } from '../../util/canonical-json.ts';
import { InvalidAuthorizationDetails } from './errors.ts';

/** The RFC 9396 authorization details type that Mandate defines: one action of one resource. */
export const MANDATE_ACTION_TYPE = 'mandate_action';

/** The `authorization_details_types_supported` of the server metadata (RFC 9396 §10). */
export const AUTHORIZATION_DETAILS_TYPES = [MANDATE_ACTION_TYPE];

/** Longest `authorization_details` parameter accepted, in bytes of UTF-8. */
export const MAX_AUTHORIZATION_DETAILS_BYTES = 8 * 1024;

/**
 * One authorization detail of type `mandate_action` (RFC 9396 §2): the person approves one action
 * of one resource, and with `arguments` only a call whose JSON body has exactly these members.
 */
export interface MandateActionDetail {
  type: typeof MANDATE_ACTION_TYPE;
  /** Resource identifier (RFC 8707), which becomes the access token's audience. */
  resource: string;
  /** Name of an action of that resource. */
  action: string;
  /** The JSON object the call's body must equal in RFC 8785 canonical form; absent allows any body. */
  arguments?: Record<string, unknown>;
}

const DETAIL_MEMBERS = new Set(['type', 'resource', 'action', 'arguments']);

/**
 * Parses the `authorization_details` request parameter (RFC 9396 §2). The text must be a JSON
 * array that every JSON parser reads the same way: no repeated member names, and numbers that
 * are exactly the doubles they denote, because the approved arguments are later compared in
 * canonical form. Mandate approves one action per backchannel request, so the array has exactly
 * one detail. Any failure is `invalid_authorization_details` (RFC 9396 §5).
 */
export function parseAuthorizationDetails(text: string): MandateActionDetail[] {
  if (Buffer.byteLength(text, 'utf8') > MAX_AUTHORIZATION_DETAILS_BYTES) {
    throw new InvalidAuthorizationDetails(`authorization_details is longer than ${MAX_AUTHORIZATION_DETAILS_BYTES} bytes.`);
  }
  const parsed = parseBindableJson(Buffer.from(text, 'utf8'), 'application/json');
  if (parsed === undefined) {
    throw new InvalidAuthorizationDetails('authorization_details is not valid JSON, repeats a member name, or has a number that a double cannot represent exactly.');
  }

  const details = readAuthorizationDetails(parsed.value);
  if (typeof details === 'string') throw new InvalidAuthorizationDetails(details);
  if (details.length !== 1) throw new InvalidAuthorizationDetails(`authorization_details has ${details.length} entries, but each backchannel request must contain exactly one ${MANDATE_ACTION_TYPE} detail.`);
  return details;
}

/**
 * Checks that a value is an array of well-formed `mandate_action` details, and returns them or
 * the reason they are not. The gateway uses it on the claim of a token as well.
 */
export function readAuthorizationDetails(value: unknown): MandateActionDetail[] | string {
  if (!Array.isArray(value)) return 'authorization_details must be a JSON array of objects (RFC 9396 §2).';
  if (value.length === 0) return 'authorization_details must not be an empty array.';

  const details: MandateActionDetail[] = [];
  for (const [index, entry] of value.entries()) {
    const detail = readDetail(entry);
    if (typeof detail === 'string') return `authorization_details[${index}] ${detail}`;
    details.push(detail);
  }
  return details;
}

function readDetail(entry: unknown): MandateActionDetail | string {
  if (!isPlainObject(entry)) return 'is not a JSON object.';
  // RFC 9396 §2: every detail has a type, and an unknown type must be rejected.
  if (typeof entry.type !== 'string') return 'has no "type" string.';
  if (entry.type !== MANDATE_ACTION_TYPE) return `has the unknown type ${JSON.stringify(entry.type.slice(0, 100))}; this server supports only ${MANDATE_ACTION_TYPE}.`;

  const unknown = Object.keys(entry).filter((name) => !DETAIL_MEMBERS.has(name));
  if (unknown.length > 0) return `has the member ${JSON.stringify(unknown[0]?.slice(0, 100))}, which a ${MANDATE_ACTION_TYPE} detail does not define; use only type, resource, action and arguments.`;

  if (typeof entry.resource !== 'string' || !isAbsoluteUriWithoutFragment(entry.resource)) return 'needs "resource": the resource identifier, an absolute URI without a fragment.';
  if (typeof entry.action !== 'string' || entry.action === '' || entry.action.length > 200) return 'needs "action": the name of one action of the resource.';
  if (entry.arguments !== undefined && !isPlainObject(entry.arguments)) return 'has "arguments" that is not a JSON object; send the call\'s JSON body members as an object, or leave arguments out.';

  return {
    type: MANDATE_ACTION_TYPE,
    resource: entry.resource,
    action: entry.action,
    ...(entry.arguments === undefined ? {} : { arguments: entry.arguments }),
  };
}

/** Serializes approved details in RFC 8785 canonical form, for storage and for the audit digest. */
export function canonicalDetails(details: MandateActionDetail[]): string {
  return canonicalJson(details);
}

/**
 * Returns true when a call's body carries exactly the approved arguments: a JSON object that
 * every parser reads the same way and whose RFC 8785 canonical form equals the approved one.
 */
export function argumentsMatch(approved: Record<string, unknown>, body: Buffer, contentType: string | undefined): boolean {
  const parsed = parseBindableJson(body, contentType);
  if (parsed === undefined || !isPlainObject(parsed.value)) return false;
  return canonicalJson(parsed.value) === canonicalJson(approved);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isAbsoluteUriWithoutFragment(value: string): boolean {
  if (value.includes('#') || value.length > 2000) return false;
  return URL.canParse(value);
}
