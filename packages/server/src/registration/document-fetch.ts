import { lookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import { isPermittedAddress } from './public-address.ts';

/** Limits of one metadata document fetch; the draft suggests 5 KB as the largest document. */
export const DOCUMENT_LIMITS = { maxBytes: 5 * 1024, timeoutMs: 5000 } as const;

/** Freshness of a fetched document when its response has no caching headers, and the bounds on any it has. */
const CACHE_SECONDS = { default: 300, min: 60, max: 24 * 3600 } as const;

export interface FetchOptions {
  /** Loopback test mode: http and loopback addresses are allowed; other private ranges never are. */
  allowLoopback: boolean;
  /** Extra CA certificates (PEM) trusted besides Node's own roots. */
  trustedCertificates?: string[] | undefined;
}

export interface FetchedDocument {
  body: unknown;
  /** Seconds the document may be reused, from its Cache-Control or Expires header, bounded. */
  freshSeconds: number;
}

/** A document that could not be fetched or is not usable; the message is safe to show to the client. */
export class DocumentFetchError extends Error {
  override name = 'DocumentFetchError';
}

/**
 * Fetches a JSON document from a URL a client chose, defended against server-side request forgery.
 * Every address the host name resolves to must be public. The check runs in the resolver that the
 * connection itself uses, so a second DNS answer cannot swap in another address. Redirects are not
 * followed, and the response is bounded in size and time.
 */
export async function fetchJsonDocument(url: URL, options: FetchOptions): Promise<FetchedDocument> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) !== 0 && !isPermittedAddress(host, options.allowLoopback)) throw new DocumentFetchError('The URL points at an address that is not public.');

  const agent = new Agent({
    connect: {
      timeout: DOCUMENT_LIMITS.timeoutMs,
      lookup: permittedLookup(options.allowLoopback),
      ...(options.trustedCertificates === undefined ? {} : { ca: [...rootCertificates, ...options.trustedCertificates] }),
    },
    headersTimeout: DOCUMENT_LIMITS.timeoutMs,
    bodyTimeout: DOCUMENT_LIMITS.timeoutMs,
  });
  try {
    const response = await request(url, {
      dispatcher: agent,
      method: 'GET',
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(DOCUMENT_LIMITS.timeoutMs),
    }).catch((error: unknown) => {
      throw new DocumentFetchError(connectFailure(error));
    });

    if (response.statusCode !== 200) {
      await response.body.dump();
      const redirect = response.statusCode >= 300 && response.statusCode < 400 ? ' (redirects are not followed)' : '';
      throw new DocumentFetchError(`The document URL answered with HTTP ${response.statusCode}${redirect}; it must answer 200.`);
    }
    const contentType = String(response.headers['content-type'] ?? '');
    if (!/^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(contentType)) {
      await response.body.dump();
      throw new DocumentFetchError('The document must be served as application/json.');
    }

    const text = await readBounded(response.body);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new DocumentFetchError('The document is not valid JSON.');
    }
    return { body, freshSeconds: freshness(response.headers) };
  } finally {
    await agent.destroy();
  }
}

/** Creates the connection's resolver, which fails unless every address of the host is permitted. */
function permittedLookup(allowLoopback: boolean) {
  return (hostname: string, options: { all?: boolean }, callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    lookup(hostname, { all: true, verbatim: true }, (error, addresses) => {
      if (error !== null) return callback(error, []);
      if (addresses.length === 0 || addresses.some((entry) => !isPermittedAddress(entry.address, allowLoopback))) {
        return callback(Object.assign(new Error('The host resolves to an address that is not public.'), { code: 'ENOTPUBLIC' }), []);
      }
      if (options.all === true) return callback(null, addresses);
      const first = addresses[0] as LookupAddress;
      return callback(null, first.address, first.family);
    });
  };
}

function connectFailure(error: unknown): string {
  const code = (error as { code?: unknown; cause?: { code?: unknown } }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
  if (code === 'ENOTPUBLIC') return 'The URL host resolves to an address that is not public.';
  if (code === 'ENOTFOUND') return 'The URL host does not resolve.';
  if ((error as Error).name === 'TimeoutError' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') return 'The document URL did not answer in time.';
  return 'The document could not be fetched.';
}

async function readBounded(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += chunk.length;
      if (size > DOCUMENT_LIMITS.maxBytes) {
        body.destroy();
        throw new DocumentFetchError(`The document is larger than ${DOCUMENT_LIMITS.maxBytes} bytes.`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof DocumentFetchError) throw error;
    throw new DocumentFetchError('The document could not be read in time.');
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Computes how long the response may be reused (RFC 9111 §4.2.1): `no-store` or `no-cache` means not at all,
 * then `s-maxage` (Mandate is a shared cache), `max-age`, then `Expires`. The result is bounded so
 * that a document cannot make Mandate fetch it on every request or keep it for days.
 */
function freshness(headers: Record<string, string | string[] | undefined>): number {
  const cacheControl = String(headers['cache-control'] ?? '').toLowerCase();
  const directives = new Map(
    cacheControl
      .split(',')
      .map((part) => part.trim().split('='))
      .filter(([name]) => name !== '')
      .map(([name, value]) => [name as string, value?.replace(/^"|"$/g, '')]),
  );
  let seconds: number | undefined;
  if (directives.has('no-store') || directives.has('no-cache')) seconds = 0;
  else {
    const maxAge = directives.get('s-maxage') ?? directives.get('max-age');
    if (maxAge !== undefined && /^\d+$/.test(maxAge)) seconds = Number(maxAge);
    else if (typeof headers.expires === 'string') {
      const expires = Date.parse(headers.expires);
      if (!Number.isNaN(expires)) seconds = Math.floor((expires - Date.now()) / 1000);
    }
  }
  return Math.min(CACHE_SECONDS.max, Math.max(CACHE_SECONDS.min, seconds ?? CACHE_SECONDS.default));
}
