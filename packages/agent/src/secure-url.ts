const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Parses `value` as an absolute URL and requires `https:`, except for loopback
 * hosts, where plain `http:` is allowed for local development and tests.
 * Throws a TypeError naming `label` otherwise.
 */
export function parseSecureUrl(value: string | URL, label: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${label} is not an absolute URL: ${String(value)}`);
  }

  if (url.protocol === 'https:') {
    return url;
  }
  if (url.protocol === 'http:' && isLoopbackHostname(url.hostname)) {
    return url;
  }
  throw new TypeError(`${label} must use https (http is allowed only for loopback hosts): ${url.href}`);
}

function isLoopbackHostname(hostname: string): boolean {
  return LOOPBACK_HOSTNAMES.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);
}
