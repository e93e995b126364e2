import { fetchAuthorizationServerMetadata } from './authorization-server-metadata.ts';
import { parseSecureUrl } from './secure-url.ts';

/** The scope of the access tokens that call Mandate's Access Evaluation API. */
export const EVALUATION_SCOPE = 'mandate:evaluate';

/**
 * Returns this server's access token for Mandate's Access Evaluation API. A
 * function with `invalidate` drops a cached token, which `evaluate` calls when
 * Mandate rejects the token with 401.
 */
export interface PdpCredentials {
  (): string | Promise<string>;
  invalidate?: () => void;
}

export interface PdpClientCredentialsOptions {
  /** Mandate's issuer URL. */
  issuer: string;
  /** client_id of an application (or admin client) registered in Mandate. */
  clientId: string;
  clientSecret: string;
  /** Token endpoint URL. Defaults to `token_endpoint` of the issuer's RFC 8414 metadata. */
  tokenEndpoint?: string;
  /** Seconds before expiry at which a cached token is replaced. Defaults to 30. */
  refreshBeforeExpirySeconds?: number;
  fetch?: typeof fetch;
}

interface CachedToken {
  token: string;
  /** Milliseconds since the Unix epoch after which the token is not used. */
  usableUntil: number;
}

/**
 * Creates credentials that obtain the token with the client_credentials grant
 * (RFC 6749 §4.4) and client_secret_basic, for the audience `<issuer>/access`
 * (RFC 8707) and the scope `mandate:evaluate`. The token is cached until
 * shortly before it expires, and concurrent callers share one token request.
 * A failed request throws, and `evaluate` then denies the call.
 */
export function pdpClientCredentials(options: PdpClientCredentialsOptions): PdpCredentials {
  const issuer = parseSecureUrl(options.issuer, 'issuer').href.replace(/\/+$/, '');
  const fetchImplementation = options.fetch ?? fetch;
  const marginMs = (options.refreshBeforeExpirySeconds ?? 30) * 1000;
  let cached: CachedToken | undefined;
  let pending: Promise<string> | undefined;
  let endpoint: string | undefined;

  const requestToken = async (): Promise<string> => {
    endpoint ??= await tokenEndpointOf(options, fetchImplementation);
    // RFC 6749 §2.3.1: the client_id and secret are form-urlencoded before Basic encoding.
    const basic = Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64');
    const response = await fetchImplementation(endpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${basic}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${issuer}/access`, scope: EVALUATION_SCOPE }),
      redirect: 'error',
    });
    const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (response.status !== 200 || typeof body?.access_token !== 'string') {
      throw new Error(`The token request for Mandate's Access Evaluation API failed with HTTP ${response.status}: ${String(body?.error ?? 'no error code')}`);
    }

    const expiresInSeconds = typeof body.expires_in === 'number' ? body.expires_in : 60;
    cached = { token: body.access_token, usableUntil: Date.now() + Math.max(0, expiresInSeconds * 1000 - marginMs) };
    return body.access_token;
  };

  const credentials: PdpCredentials = () => {
    if (cached !== undefined && Date.now() < cached.usableUntil) {
      return cached.token;
    }
    pending ??= requestToken().finally(() => {
      pending = undefined;
    });
    return pending;
  };
  credentials.invalidate = () => {
    cached = undefined;
  };
  return credentials;
}

async function tokenEndpointOf(options: PdpClientCredentialsOptions, fetchImplementation: typeof fetch): Promise<string> {
  if (options.tokenEndpoint !== undefined) {
    return parseSecureUrl(options.tokenEndpoint, 'tokenEndpoint').href;
  }
  const metadata = await fetchAuthorizationServerMetadata(options.issuer, fetchImplementation);
  if (typeof metadata.token_endpoint !== 'string') {
    throw new Error(`The metadata of ${options.issuer} has no token_endpoint`);
  }
  return parseSecureUrl(metadata.token_endpoint, 'token_endpoint').href;
}
