import { InvalidResponseError } from './errors.ts';
import { parseSecureUrl } from './secure-url.ts';

/**
 * Fetches the issuer's RFC 8414 metadata and returns its token endpoint.
 * Throws InvalidResponseError when the request fails, the issuer differs or
 * the token endpoint is missing or not https (http only on loopback).
 */
export async function discoverTokenEndpoint(issuer: string, fetchImplementation: typeof fetch): Promise<URL> {
  const url = metadataUrlForIssuer(issuer);
  const response = await fetchImplementation(url, {
    headers: { accept: 'application/json' },
    redirect: 'error',
  });
  if (response.status !== 200) {
    throw new InvalidResponseError(`Authorization server metadata request to ${url.href} failed with HTTP ${response.status}`);
  }

  let metadata: unknown;
  try {
    metadata = await response.json();
  } catch (error) {
    throw new InvalidResponseError(`Authorization server metadata at ${url.href} is not valid JSON`, { cause: error });
  }
  if (typeof metadata !== 'object' || metadata === null) {
    throw new InvalidResponseError(`Authorization server metadata at ${url.href} is not a JSON object`);
  }
  const { issuer: publishedIssuer, token_endpoint: tokenEndpoint } = metadata as Record<string, unknown>;

  // RFC 8414 §3.3: the published issuer must be identical to the configured
  // one, or the agent could send its credentials to another server's endpoint.
  if (publishedIssuer !== issuer) {
    throw new InvalidResponseError(
      `Authorization server metadata at ${url.href} names issuer ${String(publishedIssuer)}, expected ${issuer}`,
    );
  }
  if (typeof tokenEndpoint !== 'string') {
    throw new InvalidResponseError(`Authorization server metadata at ${url.href} has no token_endpoint`);
  }
  try {
    return parseSecureUrl(tokenEndpoint, 'token_endpoint');
  } catch (error) {
    throw new InvalidResponseError((error as Error).message);
  }
}

/**
 * Builds the RFC 8414 §3.1 metadata URL: the well-known suffix goes between
 * the host and any path of the issuer.
 */
export function metadataUrlForIssuer(issuer: string): URL {
  const issuerUrl = parseSecureUrl(issuer, 'issuer');
  const issuerPath = issuerUrl.pathname === '/' ? '' : issuerUrl.pathname.replace(/\/$/, '');
  return new URL(`/.well-known/oauth-authorization-server${issuerPath}`, issuerUrl.origin);
}
