import { parseSecureUrl } from './secure-url.ts';

/** The members of RFC 8414 authorization server metadata that this package reads. */
export interface AuthorizationServerMetadata {
  issuer: string;
  jwks_uri: string;
  [member: string]: unknown;
}

/**
 * Builds the RFC 8414 §3.1 metadata URL: the well-known suffix goes between
 * the host and any path of the issuer, so `https://as.example/tenant` becomes
 * `https://as.example/.well-known/oauth-authorization-server/tenant`.
 */
export function metadataUrlForIssuer(issuer: string): URL {
  const issuerUrl = parseSecureUrl(issuer, 'issuer');
  const issuerPath = issuerUrl.pathname === '/' ? '' : issuerUrl.pathname.replace(/\/$/, '');
  return new URL(`/.well-known/oauth-authorization-server${issuerPath}`, issuerUrl.origin);
}

/**
 * Fetches the issuer's RFC 8414 metadata and checks that it names the same
 * issuer and a JWKS URI. Throws an Error describing the first problem found.
 */
export async function fetchAuthorizationServerMetadata(
  issuer: string,
  fetchImplementation: typeof fetch = fetch,
): Promise<AuthorizationServerMetadata> {
  const url = metadataUrlForIssuer(issuer);
  const response = await fetchImplementation(url, {
    headers: { accept: 'application/json' },
    redirect: 'error',
  });
  if (response.status !== 200) {
    throw new Error(`Authorization server metadata request to ${url.href} failed with HTTP ${response.status}`);
  }

  const metadata: unknown = await response.json();
  if (typeof metadata !== 'object' || metadata === null) {
    throw new Error(`Authorization server metadata at ${url.href} is not a JSON object`);
  }
  const { issuer: publishedIssuer, jwks_uri: jwksUri } = metadata as Record<string, unknown>;

  // RFC 8414 §3.3: the published issuer must be identical to the one we asked
  // for, otherwise an attacker's metadata could stand in for the real server's.
  if (publishedIssuer !== issuer) {
    throw new Error(`Authorization server metadata at ${url.href} names issuer ${String(publishedIssuer)}, expected ${issuer}`);
  }
  if (typeof jwksUri !== 'string') {
    throw new Error(`Authorization server metadata at ${url.href} has no jwks_uri`);
  }
  return metadata as AuthorizationServerMetadata;
}
