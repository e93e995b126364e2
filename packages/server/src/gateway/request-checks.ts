import type { IncomingHttpHeaders } from 'node:http';
import { findCredentialParameter, normalizeParameterName, readParameterNames } from '../http/query-parameters.ts';
import { InvalidRequest, OAuthError } from '../oauth/errors.ts';
import { parseMediaType } from '../policy/json-arguments.ts';
import { mediaTypeEssence } from '../http/media-type.ts';

/**
 * Request fields that make a server treat a request as another method or another path than
 * the request line names. Symfony and Rack read `X-HTTP-Method-Override`, and ArangoDB reads
 * all three method fields. Symfony reads `X-Original-URL` (IIS URL Rewrite) and
 * `X-Rewrite-URL` (ISAPI_Rewrite), and Zend Framework 1 reads `X-Rewrite-URL`.
 */
export const OVERRIDE_FIELDS: readonly string[] = ['x-http-method-override', 'x-http-method', 'x-method-override', 'x-original-url', 'x-rewrite-url'];

/**
 * Query parameters and body fields that override the method, as `normalizeParameterName`
 * returns them. Rack reads `_method` from form bodies, Symfony and AdonisJS also from the query,
 * and Laravel also from JSON bodies. Salesforce reads `_HttpMethod` from the query. The field
 * names above are included as parameters too.
 */
const OVERRIDE_PARAMETERS: ReadonlySet<string> = new Set(['_method', '_httpmethod', 'x_http_method_override', 'x_http_method', 'x_method_override']);

/**
 * Rejects a query that carries a credential, before anything stores or logs the query.
 * Mandate accepts its access token only in the Authorization field (RFC 6750 §2.1). A token in
 * the query (§2.3) would be kept by every log, audit entry and approval that records the
 * request target, and would be forwarded to the upstream. The error is RFC 6750 §3.1
 * `invalid_request` and names the parameter, never its value.
 */
export function checkQueryCredentials(query: string): void {
  const parameter = findCredentialParameter(query);
  if (parameter === undefined) return;
  throw new CredentialParameterRejected(parameter, `The gateway does not accept credentials in the query string, and it found the parameter ${parameter}.`);
}

/**
 * Rejects a form body (URL-encoded or multipart) with an `access_token` field, the way RFC 6750
 * §2.2 sends a token in the body. Mandate does not read a token there, so the token would be
 * forwarded to the upstream and shown on the approval page. Other credential names are not
 * checked in bodies, because an upstream API may take a field such as `password` as data.
 */
export function checkBodyCredentials(body: Buffer, contentType: string | undefined): void {
  if (!isFormBody(contentType)) return;
  const field = bodyFieldNames(body, contentType).map(normalizeParameterName).find((name) => name === BODY_TOKEN_FIELD);
  if (field === undefined) return;
  throw new CredentialParameterRejected(field, `The gateway does not accept an access token in the request body, and it found the form field ${field}.`);
}

/** The form field of RFC 6750 §2.2, as `normalizeParameterName` returns it. */
const BODY_TOKEN_FIELD = 'access_token';

/** A request rejected because its query or form body carries a credential (normalized name in `parameter`). */
export class CredentialParameterRejected extends InvalidRequest {
  readonly parameter: string;

  constructor(parameter: string, finding: string) {
    const description = `${finding} Send the access token as "Authorization: Bearer <token>" and remove the ${parameter} parameter.`;
    super(description, { headers: { 'www-authenticate': `Bearer realm="mandate", error="invalid_request", error_description="${description.replace(/["\\]/g, '')}"` } });
    this.parameter = parameter;
  }
}

/**
 * Rejects a request body with a content coding (RFC 9110 §8.4), such as gzip. The policy, the
 * approval binding and the checks above read the body as sent, so an upstream that decodes it
 * would act on fields that none of them saw. The status is 415 with `Accept-Encoding: identity`
 * (RFC 7694 §3).
 */
export function checkContentEncoding(headers: IncomingHttpHeaders): void {
  const codings = (headers['content-encoding'] ?? '').split(',').map((coding) => coding.trim().toLowerCase()).filter((coding) => coding !== '' && coding !== 'identity');
  if (codings.length === 0) return;
  throw new ContentEncodingRejected(codings.join(', '));
}

/** A request rejected because its body has a content coding (`codings`, as sent, lower case). */
export class ContentEncodingRejected extends OAuthError {
  readonly codings: string;

  constructor(codings: string) {
    super('invalid_request', 415, `The gateway does not accept a content-coded request body (Content-Encoding: ${codings.slice(0, 100)}), because policies and approvals read the body as sent. Send the body without a content coding.`, {
      headers: { 'accept-encoding': 'identity' },
    });
    this.codings = codings;
  }
}

/**
 * Rejects a request that carries an override of its method or path in a field, a query
 * parameter or a field of a form or JSON body. The policy decided the request line, so an agent
 * allowed `POST /items` could otherwise have the upstream run `DELETE /items`.
 *
 * These requests are rejected rather than forwarded with the override removed: a stripped
 * request would silently do something other than what the agent sent, and an agent that sends
 * an override gets a clear error to act on. `buildOutgoingRequest` strips the same fields as a
 * second guard.
 */
export function checkNoOverride(headers: IncomingHttpHeaders, query: string, body: Buffer, contentType: string | undefined): void {
  const field = OVERRIDE_FIELDS.find((name) => headers[name] !== undefined);
  if (field !== undefined) throw new OverrideRejected(`the ${field} header`);

  const parameter = readParameterNames(query).find((name) => OVERRIDE_PARAMETERS.has(normalizeParameterName(name)));
  if (parameter !== undefined) throw new OverrideRejected(`the query parameter ${normalizeParameterName(parameter)}`);

  const bodyField = bodyFieldNames(body, contentType).find((name) => OVERRIDE_PARAMETERS.has(normalizeParameterName(name)));
  if (bodyField !== undefined) throw new OverrideRejected(`the body field ${normalizeParameterName(bodyField)}`);
}

/** A request refused because it carries a method or path override (where, in `source`). */
export class OverrideRejected extends InvalidRequest {
  readonly source: string;

  constructor(source: string) {
    super(`The gateway does not forward method or path overrides, and the request has ${source}. Send the request with the method and path you mean and remove the override.`);
    this.source = source;
  }
}

/**
 * Returns the field names of a form body (URL-encoded or multipart) or the top-level member
 * names of a JSON object body. Any other body, or one that does not parse, has none.
 */
function bodyFieldNames(body: Buffer, contentType: string | undefined): string[] {
  if (body.length === 0 || contentType === undefined) return [];
  const mediaType = mediaTypeEssence(contentType);

  if (mediaType === 'application/x-www-form-urlencoded') return formTexts(body, contentType).flatMap((text) => readParameterNames(text));
  if (mediaType.startsWith('multipart/')) return multipartFieldNames(body);

  if (mediaType === 'application/json' || mediaType.endsWith('+json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return [];
    }
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? Object.keys(parsed) : [];
  }

  return [];
}

/** Charsets whose reading of a URL-encoded body's ASCII names equals the Latin-1 reading. */
const ASCII_COMPATIBLE_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii', 'iso-8859-1', 'latin1']);

/**
 * Returns the text of a URL-encoded body as Latin-1, and also as its declared charset when that
 * is another one, such as UTF-16, that `TextDecoder` supports. An upstream that honors the label
 * reads the names in the second text.
 */
function formTexts(body: Buffer, contentType: string): string[] {
  const texts = [body.toString('latin1')];
  const charset = parseMediaType(contentType)?.parameters.find(([name]) => name === 'charset')?.[1].toLowerCase();
  if (charset === undefined || ASCII_COMPATIBLE_CHARSETS.has(charset)) return texts;
  try {
    texts.push(new TextDecoder(charset).decode(body));
  } catch {
    // A label TextDecoder does not support; only the Latin-1 reading is checked.
  }
  return texts;
}

/** The value of each `Content-Disposition` field in a multipart body. */
const DISPOSITION_FIELD = /^content-disposition:([^\r\n]*)/gim;
/** A `name` or `name*` parameter of a `Content-Disposition` value (RFC 7578 §4.2, RFC 8187), quoted or not. */
const NAME_PARAMETER = /(?:^|;)\s*name(\*?)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/gi;

/**
 * Returns every field name that the `Content-Disposition` fields of a multipart body give: all
 * `name` parameters of a field (parsers differ in which of two they keep) and `name*` with its
 * RFC 8187 charset and language dropped. The body is read as UTF-8, as RFC 7578 §5.1 names are.
 * NOTE: the parts are not parsed, so a `Content-Disposition` line inside an uploaded file
 * counts too, and so does `name=` inside a quoted `filename`.
 */
function multipartFieldNames(body: Buffer): string[] {
  const names: string[] = [];
  for (const field of body.toString('utf8').matchAll(DISPOSITION_FIELD)) {
    for (const parameter of (field[1] ?? '').matchAll(NAME_PARAMETER)) {
      const value = parameter[2] ?? parameter[3] ?? '';
      names.push(parameter[1] === '*' ? withoutCharsetAndLanguage(value) : value);
    }
  }
  return names;
}

/** Drops the `charset'language'` prefix of an RFC 8187 value; a value without one is returned whole. */
function withoutCharsetAndLanguage(value: string): string {
  const parts = value.split("'");
  return parts.length >= 3 ? parts.slice(2).join("'") : value;
}

/** Tells whether the body is a form: URL-encoded or multipart. */
function isFormBody(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const mediaType = mediaTypeEssence(contentType);
  return mediaType === 'application/x-www-form-urlencoded' || mediaType.startsWith('multipart/');
}
