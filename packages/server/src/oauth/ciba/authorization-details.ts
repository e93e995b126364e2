import { parseBindableJson } from '../../approvals/arguments.ts';
import { normalizeUpstreamPath, type UpstreamPath } from '../../gateway/path.ts';
import { canonicalJson } from '../../util/canonical-json.ts';
import { InvalidRequest } from '../errors.ts';
import { InvalidAuthorizationDetails } from './errors.ts';

/** The RFC 9396 authorization details type that Mandate defines: one action of one resource. */
export const MANDATE_ACTION_TYPE = 'mandate_action';

/** The `authorization_details_types_supported` of the server metadata (RFC 9396 §10). */
export const AUTHORIZATION_DETAILS_TYPES = [MANDATE_ACTION_TYPE];

/** Longest `authorization_details` parameter accepted, in bytes of UTF-8. */
export const MAX_AUTHORIZATION_DETAILS_BYTES = 8 * 1024;

/** Longest `path` member of a detail, in characters. */
export const MAX_DETAIL_PATH_LENGTH = 4096;

/**
 * One authorization detail of type `mandate_action` (RFC 9396 §2): the person approves one action
 * of one resource. `arguments` binds the call's JSON body, `method` its HTTP method and `path`
 * its path and query. Each member that is absent leaves that part of the call open.
 */
export interface MandateActionDetail {
  type: typeof MANDATE_ACTION_TYPE;
  /** Resource identifier (RFC 8707), which becomes the access token's audience. */
  resource: string;
  /** Name of an action of that resource. */
  action: string;
  /** The JSON object the call's body must equal in RFC 8785 canonical form; absent allows any body. */
  arguments?: Record<string, unknown>;
  /** The call's HTTP method in upper case, such as `DELETE`; absent allows every method of the action. */
  method?: string;
  /**
   * The call's path and query after `/gateway/<resource>`, such as `/repos/acme/site?force=true`;
   * absent allows any path under the action's path prefix and any query.
   */
  path?: string;
}

const DETAIL_MEMBERS = new Set(['type', 'resource', 'action', 'arguments', 'method', 'path']);

/**
 * An HTTP method (RFC 9110 §9) in upper case. Node.js accepts only registered methods, which are
 * upper-case letters and `-`, so a method outside this pattern could never match a call.
 */
const DETAIL_METHOD = /^[A-Z][A-Z-]{0,31}$/;

/** The characters of an RFC 3986 path and query: unreserved, sub-delims, ":", "@", "/", "?" and percent-encoded octets. */
const URI_PATH_AND_QUERY = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$/;

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
  if (unknown.length > 0) return `has the member ${JSON.stringify(unknown[0]?.slice(0, 100))}, which a ${MANDATE_ACTION_TYPE} detail does not define; use only type, resource, action, arguments, method and path.`;

  if (typeof entry.resource !== 'string' || !isAbsoluteUriWithoutFragment(entry.resource)) return 'needs "resource": the resource identifier, an absolute URI without a fragment.';
  if (typeof entry.action !== 'string' || entry.action === '' || entry.action.length > 200) return 'needs "action": the name of one action of the resource.';
  if (entry.arguments !== undefined && !isPlainObject(entry.arguments)) return 'has "arguments" that is not a JSON object; send the call\'s JSON body members as an object, or leave arguments out.';
  if (entry.method !== undefined && (typeof entry.method !== 'string' || !DETAIL_METHOD.test(entry.method))) return 'has "method" that is not an HTTP method in upper case, such as "DELETE"; send the call\'s method, or leave method out.';
  const path = entry.path;
  if (path !== undefined) {
    const problem = typeof path === 'string' ? pathProblem(path) : 'is not a string';
    if (problem !== undefined) return `has "path" that ${problem}; send the call's path and query after the resource's gateway URL, such as "/items/4?force=true", or leave path out.`;
  }

  return {
    type: MANDATE_ACTION_TYPE,
    resource: entry.resource,
    action: entry.action,
    ...(entry.arguments === undefined ? {} : { arguments: entry.arguments }),
    ...(entry.method === undefined ? {} : { method: entry.method }),
    ...(typeof path === 'string' ? { path } : {}),
  };
}

/**
 * Returns why a detail's `path` could never be the target of a gateway call, or undefined when it
 * can. It must be written as it goes on the wire, so the person reads what the call will send,
 * and the gateway's path rules must accept it.
 */
function pathProblem(path: string): string | undefined {
  if (path.length > MAX_DETAIL_PATH_LENGTH) return `is longer than ${MAX_DETAIL_PATH_LENGTH} characters`;
  if (!path.startsWith('/')) return 'does not start with "/"';
  if (!URI_PATH_AND_QUERY.test(path)) return 'contains a character that a URI path or query does not allow unencoded, or a malformed percent-encoding; percent-encode it';
  try {
    normalizeUpstreamPath(path);
  } catch (error) {
    if (error instanceof InvalidRequest) return `the gateway would reject (${error.description})`;
    throw error;
  }
  return undefined;
}

/**
 * Returns the detail's bound path and query in the form the gateway compares and forwards, or
 * undefined when the detail binds no path. The path was checked when the detail was read.
 */
export function detailTarget(detail: MandateActionDetail): UpstreamPath | undefined {
  return detail.path === undefined ? undefined : normalizeUpstreamPath(detail.path);
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
