/**
 * Decides whether a requested redirect URI matches a registered one. The comparison is exact
 * string equality (RFC 9700 §4.1.3), with one exception: for a loopback IP literal over http,
 * a native app picks a free port at run time, so any port matches (RFC 8252 §7.3). The host
 * name `localhost` gets no such exception (RFC 8252 §8.3).
 */
export function redirectUriMatches(registered: string, requested: string): boolean {
  if (registered === requested) return true;

  const registeredUrl = loopbackUrl(registered);
  const requestedUrl = loopbackUrl(requested);
  if (registeredUrl === undefined || requestedUrl === undefined) return false;

  return (
    registeredUrl.hostname === requestedUrl.hostname &&
    registeredUrl.pathname === requestedUrl.pathname &&
    registeredUrl.search === requestedUrl.search &&
    registeredUrl.username === '' &&
    requestedUrl.username === '' &&
    registeredUrl.password === '' &&
    requestedUrl.password === '' &&
    // Only the port may differ: everything else was compared above, and the strings differ.
    withoutPort(registered) === withoutPort(requested)
  );
}

function loopbackUrl(value: string): URL | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  const loopback = url.hostname === '127.0.0.1' || url.hostname === '[::1]';
  return url.protocol === 'http:' && loopback && url.hash === '' ? url : undefined;
}

function withoutPort(value: string): string {
  return value.replace(/^(http:\/\/(?:127\.0\.0\.1|\[::1\])):\d{1,5}(?=[/?]|$)/, '$1');
}

/**
 * Why a URI cannot be registered as a redirect URI, or undefined when it can. RFC 9700 §2.1 and
 * RFC 6749 §3.1.2: exact, absolute redirect URIs without a fragment; http only on loopback
 * (RFC 8252 §7.3), and other schemes only as private-use schemes with a dot (RFC 8252 §7.1).
 */
export function redirectUriProblem(value: string): string | undefined {
  if (!URL.canParse(value)) return 'must be an absolute URI';

  const url = new URL(value);
  if (value.includes('#')) return 'must not contain a fragment';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname) ? undefined : 'must use https unless the host is loopback';
  }
  if (/^[a-z][a-z0-9+-]*\.[a-z0-9+.-]+:$/i.test(url.protocol)) return undefined;
  return 'must use https, http on loopback, or a private-use scheme in reverse domain form';
}
