import type { IncomingMessage, ServerResponse } from 'node:http';

import { DEFAULT_DPOP_ALGORITHMS } from './dpop-proof.ts';

/** RFC 9728 §3: the well-known URI suffix of protected resource metadata. */
export const PROTECTED_RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';

export interface ProtectedResourceMetadataOptions {
  /** This resource's identifier: the `aud` of its tokens and the `resource` member. */
  resource: string;
  /** The issuer identifier of the Mandate authorization server. */
  issuer: string;
  /** Scopes a client may request for this resource (`scopes_supported`). */
  scopes?: string[];
  /**
   * DPoP proof algorithms this resource accepts. Defaults to the defaults of
   * requireAccessToken; pass an empty array when DPoP is turned off.
   */
  dpopAlgorithms?: readonly string[];
  /** Human-readable name of the resource (`resource_name`). */
  resourceName?: string;
}

/** An RFC 9728 §2 protected resource metadata document. */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  bearer_methods_supported: string[];
  scopes_supported?: string[];
  dpop_signing_alg_values_supported?: string[];
  resource_name?: string;
}

/** Builds the RFC 9728 §2 metadata document for `options.resource`. */
export function protectedResourceMetadata(options: ProtectedResourceMetadataOptions): ProtectedResourceMetadata {
  const document: ProtectedResourceMetadata = {
    resource: options.resource,
    authorization_servers: [options.issuer],
    // requireAccessToken reads tokens only from the Authorization header.
    bearer_methods_supported: ['header'],
  };
  if (options.scopes !== undefined) {
    document.scopes_supported = [...options.scopes];
  }
  const dpopAlgorithms = options.dpopAlgorithms ?? DEFAULT_DPOP_ALGORITHMS;
  if (dpopAlgorithms.length > 0) {
    document.dpop_signing_alg_values_supported = [...dpopAlgorithms];
  }
  if (options.resourceName !== undefined) {
    document.resource_name = options.resourceName;
  }
  return document;
}

/**
 * Returns the URL of the metadata document for `resource` (RFC 9728 §3.1):
 * the well-known suffix goes between the host and the resource's path, so
 * `https://api.example.com/mail` has its metadata at
 * `https://api.example.com/.well-known/oauth-protected-resource/mail`.
 */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.origin}${PROTECTED_RESOURCE_METADATA_PATH}${path}`;
}

/**
 * Creates a node:http or Connect/Express handler that serves the metadata
 * document on GET and HEAD at `/.well-known/oauth-protected-resource` and at
 * the path-suffixed form for `options.resource` (RFC 9728 §3.1). MCP clients
 * try the path-suffixed form first and then the root form.
 *
 * Requests for other paths are passed to `next` when given. The handler
 * returns true when it answered the request.
 */
export function serveProtectedResourceMetadata(
  options: ProtectedResourceMetadataOptions,
): (req: IncomingMessage, res: ServerResponse, next?: () => void) => boolean {
  const body = JSON.stringify(protectedResourceMetadata(options));
  const paths = new Set([PROTECTED_RESOURCE_METADATA_PATH, new URL(protectedResourceMetadataUrl(options.resource)).pathname]);

  return (req, res, next) => {
    const path = (req.url ?? '').split('?')[0] as string;
    if (!paths.has(path) || (req.method !== 'GET' && req.method !== 'HEAD')) {
      next?.();
      return false;
    }

    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'public, max-age=3600',
      // The document is public, and browser-based MCP clients fetch it cross-origin.
      'access-control-allow-origin': '*',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
