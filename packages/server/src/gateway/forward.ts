import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'undici';
import { OAuthError } from '../oauth/errors.ts';
import { credentialForms, redactBuffer, redactText } from './redact.ts';
import type { UpstreamPath } from './path.ts';
import { OVERRIDE_FIELDS } from './request-checks.ts';

/** Time allowed for the upstream to send its response headers, and then between body chunks. */
export const UPSTREAM_TIMEOUT_MS = 10_000;
/** Largest upstream response body the gateway relays; a larger one is a 502. */
export const MAX_UPSTREAM_RESPONSE_BYTES = 10 * 1024 * 1024;

/**
 * RFC 9110 §7.6.1 hop-by-hop fields, plus proxy fields that only concern one connection and
 * HTTP2-Settings, which belongs to an HTTP/1.1 upgrade (RFC 7540 §3.2.1).
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings']);

/**
 * Request fields never sent upstream. An upstream may trust any of them as set by its own
 * proxy, or read them as the caller's identity, so the caller must not be able to supply them:
 * - the caller's credentials for Mandate and Mandate's own fields;
 * - the client address and route a proxy reports (RFC 7239 `Forwarded`, `Via`, and the
 *   `X-Forwarded-*` family by prefix below);
 * - the client certificate a TLS-terminating proxy passes on (RFC 9440 and older names);
 * - the user an authenticating proxy signed in (more by prefix below);
 * - method and path overrides, which the pipeline already rejects (OVERRIDE_FIELDS), stripped
 *   here too so that no caller of `buildOutgoingRequest` forwards them;
 * - fields undici sets itself.
 */
const STRIPPED_REQUEST_FIELDS = new Set([
  'authorization',
  'dpop',
  'cookie',
  'cookie2',
  'mandate-approval',
  'host',
  'forwarded',
  'via',
  'x-forwarded',
  'x-real-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'client-cert',
  'client-cert-chain',
  'ssl-client-cert',
  'x-ssl-client-cert',
  'x-client-cert',
  'x-remote-user',
  'x-authenticated-user',
  'x-authenticated-userid',
  'x-goog-iap-jwt-assertion',
  ...OVERRIDE_FIELDS,
  'content-length',
  'expect',
  'accept-encoding',
]);

/**
 * Name prefixes of request fields never sent upstream: the `X-Forwarded-*` family, and the
 * identity fields that common authenticating proxies add. These are `Remote-*` (Authelia and
 * CGI-style `Remote-User`), oauth2-proxy `X-Auth-Request-*`, AWS ALB `X-Amzn-Oidc-*`, Cloudflare
 * Access `Cf-Access-*`, Google IAP `X-Goog-Authenticated-User-*`, and Azure App Service
 * `X-Ms-Client-Principal*` and `X-Ms-Token-*`.
 * NOTE: an upstream behind another proxy may trust fields not listed here.
 */
const STRIPPED_REQUEST_PREFIXES = ['x-forwarded-', 'remote-', 'x-auth-request-', 'x-amzn-oidc-', 'cf-access-', 'x-goog-authenticated-user-', 'x-ms-client-principal', 'x-ms-token-'];

/**
 * The caller's end-to-end fields that a call forwarded on a person's approval keeps. The approval
 * binds Content-Type as the media type of the arguments, and Accept and Accept-Language only
 * choose the representation of the response, so none of them can make the upstream do more than
 * the request the person saw. Every other field of the caller is withheld, among them:
 * - conditional fields (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
 *   If-Range) and Range, because they decide whether and how much of a request takes effect, and
 *   the approval neither binds nor shows them;
 * - Prefer, Idempotency-Key and custom fields, which an upstream may read as arguments.
 *
 * The fields are withheld, not rejected. The pipeline spends the approval before it builds the
 * upstream request, so a rejection here would use up the person's decision without a call. HTTP
 * clients also add fields of their own (Node.js 20 fetch sends User-Agent and Sec-Fetch-Mode),
 * which would make ordinary retries fail. Withholding forwards the request as the person saw it.
 */
const APPROVED_CALL_FIELDS = new Set(['content-type', 'accept', 'accept-language']);

/**
 * Response fields never relayed: cookies (they would be set for Mandate's origin), the
 * upstream's authentication challenges, fields Fastify computes, and security fields, because
 * the gateway's own policy applies to anything served from Mandate's origin.
 */
const STRIPPED_RESPONSE_FIELDS = new Set([
  'set-cookie',
  'set-cookie2',
  'www-authenticate',
  'content-length',
  'content-encoding',
  'alt-svc',
  'strict-transport-security',
  'content-security-policy',
  'content-security-policy-report-only',
  'x-frame-options',
  'x-content-type-options',
  'referrer-policy',
  'permissions-policy',
  'clear-site-data',
  'cross-origin-opener-policy',
  'cross-origin-embedder-policy',
  'cross-origin-resource-policy',
]);

// RFC 9110 §5.1 field-name token.
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export class UpstreamError extends OAuthError {
  constructor(description: string, options?: { detail?: string; cause?: unknown }) {
    super('upstream_error', 502, description, options);
  }
}

/** Upstream base URL and credential injection method, read from the resource row. */
export interface UpstreamTarget {
  baseUrl: string;
  /** `bearer` or `header:<Name>`. */
  auth: string;
  allowLoopback: boolean;
}

export interface OutgoingRequest {
  url: string;
  method: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
  /** Name of the request field that carries the credential, lower case. */
  credentialField: string;
  /** Names of the caller's fields, lower case and sorted, that were not forwarded because the call is approved. */
  withheldFields: string[];
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/**
 * Builds the upstream request: the URL is the configured base URL plus the checked path and
 * the query, never a host from the request. The caller's fields are copied except the ones
 * listed above, and the credential is injected last, so the caller cannot supply its own. With
 * `approvedCall` (the person approved this request) only the fields in APPROVED_CALL_FIELDS are
 * copied.
 */
export function buildOutgoingRequest(target: UpstreamTarget, path: UpstreamPath, method: string, incoming: IncomingHttpHeaders, body: Buffer, credential: string, options: { approvedCall: boolean }): OutgoingRequest {
  const base = parseBaseUrl(target);
  const credentialField = credentialFieldName(target.auth);

  const connectionListed = listedInConnection(incoming.connection);
  const headers: Record<string, string | string[]> = {};
  const withheldFields: string[] = [];
  for (const [name, value] of Object.entries(incoming)) {
    const lower = name.toLowerCase();
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(lower) || connectionListed.has(lower) || STRIPPED_REQUEST_FIELDS.has(lower) || lower === credentialField) continue;
    if (STRIPPED_REQUEST_PREFIXES.some((prefix) => lower.startsWith(prefix))) continue;
    if (options.approvedCall && !APPROVED_CALL_FIELDS.has(lower)) {
      withheldFields.push(lower);
      continue;
    }
    headers[lower] = value;
  }

  // Redaction of the response needs its plain bytes, so ask for no content coding (RFC 9110 §12.5.3).
  headers['accept-encoding'] = 'identity';
  headers[credentialField] = credentialField === 'authorization' && target.auth === 'bearer' ? `Bearer ${credential}` : credential;

  const basePath = base.pathname.replace(/\/+$/, '');
  const url = `${base.origin}${basePath}${path.encoded}${path.query === '' ? '' : `?${path.query}`}`;
  return { url, method: method.toUpperCase(), headers, body, credentialField, withheldFields: withheldFields.sort() };
}

/**
 * Sends the request and reads the response within the time and size limits. Every occurrence
 * of the credential in the response fields and body is replaced with `[redacted]`.
 */
export async function sendUpstream(outgoing: OutgoingRequest, credential: string): Promise<UpstreamResponse> {
  const forms = credentialForms(credential);
  const hasBody = outgoing.body.length > 0 && outgoing.method !== 'GET' && outgoing.method !== 'HEAD';

  let response: Awaited<ReturnType<typeof request>>;
  try {
    response = await request(outgoing.url, {
      method: outgoing.method as 'GET',
      headers: outgoing.headers,
      body: hasBody ? outgoing.body : null,
      headersTimeout: UPSTREAM_TIMEOUT_MS,
      bodyTimeout: UPSTREAM_TIMEOUT_MS,
    });
  } catch (error) {
    throw new UpstreamError('The upstream request failed or timed out.', { detail: `upstream request failed: ${redactText(describe(error), forms)}` });
  }

  const encoding = singleValue(response.headers['content-encoding']);
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    response.body.destroy();
    throw new UpstreamError('The upstream sent a content-encoded response, which the gateway cannot inspect.', { detail: `upstream content-encoding: ${encoding}` });
  }

  const body = await readLimited(response.body, forms);
  const connectionListed = listedInConnection(response.headers.connection);
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(lower) || connectionListed.has(lower) || STRIPPED_RESPONSE_FIELDS.has(lower)) continue;
    headers[lower] = Array.isArray(value) ? value.map((item) => redactText(item, forms)) : redactText(value, forms);
  }

  return { status: response.statusCode, headers, body: redactBuffer(body, forms) };
}

async function readLimited(body: AsyncIterable<Buffer> & { destroy(error?: Error): unknown }, forms: string[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += chunk.length;
      if (size > MAX_UPSTREAM_RESPONSE_BYTES) {
        body.destroy();
        throw new UpstreamError(`The upstream response is larger than ${MAX_UPSTREAM_RESPONSE_BYTES} bytes.`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof UpstreamError) throw error;
    throw new UpstreamError('The upstream response could not be read.', { detail: `upstream body failed: ${redactText(describe(error), forms)}` });
  }
  return Buffer.concat(chunks);
}

function parseBaseUrl(target: UpstreamTarget): URL {
  let base: URL;
  try {
    base = new URL(target.baseUrl);
  } catch {
    throw new UpstreamError('The resource has an invalid upstream URL; an administrator must correct it.');
  }
  if (base.search !== '' || base.hash !== '' || base.username !== '' || base.password !== '') {
    throw new UpstreamError('The resource upstream URL must not contain a query, fragment or user information; an administrator must correct it.');
  }
  if (base.protocol !== 'https:' && !(target.allowLoopback && base.protocol === 'http:')) {
    throw new UpstreamError('The resource upstream URL must use https; an administrator must correct it.');
  }
  if (!target.allowLoopback && isLoopbackHost(base.hostname)) {
    throw new UpstreamError('The resource upstream is on a loopback address, which this server does not allow.');
  }
  return base;
}

// NOTE: a host name that resolves to a loopback or private address is not detected here.
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || host.startsWith('127.') || host === '0.0.0.0' || host === '::';
}

function credentialFieldName(auth: string): string {
  if (auth === 'bearer') return 'authorization';
  if (auth.startsWith('header:')) {
    const name = auth.slice('header:'.length);
    const lower = name.toLowerCase();
    if (FIELD_NAME.test(name) && !HOP_BY_HOP.has(lower) && lower !== 'host' && lower !== 'content-length' && lower !== 'cookie') return lower;
  }
  throw new UpstreamError('The resource has an invalid upstream authentication setting; an administrator must correct it.', { detail: `invalid upstream_auth ${JSON.stringify(auth)}` });
}

function listedInConnection(value: string | string[] | undefined): Set<string> {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(text.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== ''));
}

function singleValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${(error as { code?: string }).code ?? error.name}: ${error.message}`;
  return String(error);
}
