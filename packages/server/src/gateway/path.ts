import { InvalidRequest } from '../oauth/errors.ts';
import { isWellFormedText } from '../http/well-formed-text.ts';

/** The part of a gateway request after `/gateway/<resource>`, checked and in one canonical form. */
export interface UpstreamPath {
  /** Decoded segments joined by `/`, starting with `/`; actions are matched against this. */
  decoded: string;
  /** The same path percent-encoded again segment by segment; the gateway forwards this. */
  encoded: string;
  /** The raw query string without `?`, or an empty string. */
  query: string;
}

// RFC 3986 §3.3 pchar characters that stay literal when a segment is encoded again.
const LITERAL_PCHARS = /%(21|24|26|27|28|29|2A|2B|2C|3B|3D|3A|40)/g;

/**
 * Splits the raw request target after the resource name into a path and a query, and
 * rejects any path that could address something outside the upstream base path or mean
 * something else to the upstream than to the action matcher: dot segments (also encoded,
 * RFC 3986 §5.2.4), encoded slashes and backslashes, backslashes, NUL and other control
 * characters, empty segments and malformed percent-encoding.
 */
export function normalizeUpstreamPath(rawTarget: string): UpstreamPath {
  const { rawPath, query } = splitRequestTarget(rawTarget);

  if (!rawPath.startsWith('/')) throw new InvalidRequest('The gateway path must start with "/" after the resource name.');
  if (rawPath.includes('#')) throw new InvalidRequest('The gateway path must not contain a fragment.');
  if (/[\u0000-\u001f\u007f]/.test(rawTarget)) throw new InvalidRequest('The gateway request target must not contain control characters.');
  // An HTTP request line cannot carry one, but AuthZEN and policy test files pass JSON strings here.
  if (!isWellFormedText(rawTarget)) throw new InvalidRequest('The gateway request target must not contain a lone UTF-16 surrogate.');

  // `/gateway/<name>/` addresses the upstream base path itself.
  if (rawPath === '/') return { decoded: '/', encoded: '/', query };

  const rawSegments = rawPath.slice(1).split('/');
  const decodedSegments: string[] = [];
  for (const [index, rawSegment] of rawSegments.entries()) {
    const isTrailingSlash = rawSegment === '' && index === rawSegments.length - 1;
    if (rawSegment === '' && !isTrailingSlash) throw new InvalidRequest('The gateway path must not contain empty segments ("//").');
    decodedSegments.push(decodeSegment(rawSegment));
  }

  const decoded = `/${decodedSegments.join('/')}`;
  const encoded = `/${decodedSegments.map(encodeSegment).join('/')}`;
  return { decoded, encoded, query };
}

/** Joins a normalized path and its query back into a request target, as audit entries and approvals record it. */
export function requestTarget(path: UpstreamPath): string {
  return path.query === '' ? path.encoded : `${path.encoded}?${path.query}`;
}

/** Splits a raw request target at its first `?` into the raw path and the query (without `?`), neither decoded. */
export function splitRequestTarget(rawTarget: string): { rawPath: string; query: string } {
  const queryStart = rawTarget.indexOf('?');
  if (queryStart === -1) return { rawPath: rawTarget, query: '' };
  return { rawPath: rawTarget.slice(0, queryStart), query: rawTarget.slice(queryStart + 1) };
}

function decodeSegment(rawSegment: string): string {
  if (rawSegment.includes('\\')) throw new InvalidRequest('The gateway path must not contain backslashes.');

  let segment: string;
  try {
    segment = decodeURIComponent(rawSegment);
  } catch {
    throw new InvalidRequest('The gateway path contains malformed percent-encoding.');
  }

  if (segment.includes('/') || segment.includes('\\')) throw new InvalidRequest('The gateway path must not contain encoded slashes or backslashes (%2F, %5C).');
  if (/[\u0000-\u001f\u007f]/.test(segment)) throw new InvalidRequest('The gateway path must not contain control characters, also not percent-encoded.');
  if (segment === '.' || segment === '..') throw new InvalidRequest('The gateway path must not contain "." or ".." segments.');
  return segment;
}

function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(LITERAL_PCHARS, (escape) => decodeURIComponent(escape));
}

/** Reports whether `prefix` covers `path` on a segment boundary: `/v1/items` covers `/v1/items/4` but not `/v1/itemsX`. */
export function pathHasPrefix(path: string, prefix: string): boolean {
  if (prefix === '/' || prefix === '') return true;
  const bare = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return path === bare || path.startsWith(`${bare}/`);
}
