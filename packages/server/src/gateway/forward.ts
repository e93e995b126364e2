import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'undici';
import { OAuthError } from '../oauth/errors.ts';
import { credentialForms, redactBuffer, redactText } from './redact.ts';
import type { UpstreamPath } from './path.ts';

/** Time allowed for the upstream to send its response headers, and then between body chunks. */
export const UPSTREAM_TIMEOUT_MS = 10_000;
/** Largest upstream response body the gateway relays; a larger one is a 502. */
export const MAX_UPSTREAM_RESPONSE_BYTES = 10 * 1024 * 1024;

/** RFC 9110 §7.6.1 hop-by-hop fields, plus proxy fields that only concern one connection. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * Request fields never sent upstream: the caller's credentials and Mandate's own fields, fields
 * that describe the client's connection, and fields undici sets itself.
 */
const STRIPPED_REQUEST_FIELDS = new Set(['authorization', 'dpop', 'cookie', 'mandate-approval', 'host', 'forwarded', 'x-real-ip', 'content-length', 'expect', 'accept-encoding']);

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
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/**
 * Builds the upstream request: the URL is the configured base URL plus the checked path and
 * the query, never a host from the request. The caller's fields are copied except the ones
 * listed above, and the credential is injected last, so the caller cannot supply its own.
 */
export function buildOutgoingRequest(target: UpstreamTarget, path: UpstreamPath, method: string, incoming: IncomingHttpHeaders, body: Buffer, credential: string): OutgoingRequest {
  const base = parseBaseUrl(target);
  const credentialField = credentialFieldName(target.auth);

  const connectionListed = listedInConnection(incoming.connection);
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(incoming)) {
    const lower = name.toLowerCase();
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(lower) || connectionListed.has(lower) || STRIPPED_REQUEST_FIELDS.has(lower) || lower.startsWith('x-forwarded-') || lower === credentialField) continue;
    headers[lower] = value;
  }

  // Redaction of the response needs its plain bytes, so ask for no content coding (RFC 9110 §12.5.3).
  headers['accept-encoding'] = 'identity';
  headers[credentialField] = credentialField === 'authorization' && target.auth === 'bearer' ? `Bearer ${credential}` : credential;

  const basePath = base.pathname.replace(/\/+$/, '');
  const url = `${base.origin}${basePath}${path.encoded}${path.query === '' ? '' : `?${path.query}`}`;
  return { url, method: method.toUpperCase(), headers, body, credentialField };
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
