import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';

import { startTestServer } from '../../server/test/harness.ts';
import type { TestServer } from '../../server/test/harness.ts';
import { seedWorld } from '../../server/test/fixtures.ts';
import { protectedResourceMetadataUrl, requireAccessToken, serveProtectedResourceMetadata } from '../src/index.ts';
import type { AccessTokenClaims, AuthenticatedRequest, RequireAccessTokenOptions } from '../src/index.ts';

/**
 * A real Mandate server with the seedWorld fixtures, and a node:http resource
 * server on 127.0.0.1 whose identifier is `${origin}/mail`. The resource
 * server serves its RFC 9728 metadata and guards every other path with
 * requireAccessToken for the `mail.read` scope.
 */
export interface MandateWorld {
  mandate: TestServer;
  world: Awaited<ReturnType<typeof seedWorld>>;
  resourceServer: Server;
  /** The resource identifier, `${origin}/mail`. */
  resource: string;
  /** URL of a protected path on the resource server. */
  messagesUrl: string;
  metadataUrl: string;
  /** Claims the handler received with the last accepted request. */
  lastClaims: AccessTokenClaims | undefined;
  close(): Promise<void>;
}

export async function startMandateWorld(options: Partial<RequireAccessTokenOptions> = {}): Promise<MandateWorld> {
  const mandate = await startTestServer();

  const resourceServer = createServer();
  await new Promise<void>((resolve) => resourceServer.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(resourceServer.address() as AddressInfo).port}`;
  const resource = `${origin}/mail`;
  const world = await seedWorld(mandate.ctx, { identifier: resource });

  const metadataUrl = protectedResourceMetadataUrl(resource);
  const serveMetadata = serveProtectedResourceMetadata({
    resource,
    issuer: mandate.issuer,
    scopes: ['mail.read', 'mail.send'],
  });
  const guard = requireAccessToken({
    issuer: mandate.issuer,
    audience: resource,
    scopes: ['mail.read'],
    resourceMetadataUrl: metadataUrl,
    ...options,
  });

  const state: MandateWorld = {
    mandate,
    world,
    resourceServer,
    resource,
    messagesUrl: `${resource}/messages`,
    metadataUrl,
    lastClaims: undefined,
    close: async () => {
      await new Promise((resolve) => resourceServer.close(resolve));
      await mandate.stop();
    },
  };

  resourceServer.on('request', (req: AuthenticatedRequest, res) => {
    if (serveMetadata(req, res)) {
      return;
    }
    void guard(req, res).then((claims) => {
      if (claims === undefined) {
        return;
      }
      state.lastClaims = claims;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ sub: claims.sub }));
    });
  });

  return state;
}

/** A DPoP key pair as a client holds it. */
export interface DpopKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint of the public key. */
  jkt: string;
}

export async function generateDpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

export interface ProofOptions {
  htm: string;
  htu: string;
  accessToken?: string;
  /** Replaces the `jwk` header, to build invalid proofs. */
  jwk?: JWK;
  /** Replaces or, with undefined, removes claims. */
  claims?: Record<string, unknown>;
}

/** Signs an RFC 9449 §4.2 DPoP proof with jose; valid unless `options` say otherwise. */
export async function createProof(key: DpopKey, options: ProofOptions): Promise<string> {
  const claims: Record<string, unknown> = {
    jti: randomUUID(),
    htm: options.htm,
    htu: options.htu,
    iat: Math.floor(Date.now() / 1000),
  };
  if (options.accessToken !== undefined) {
    claims.ath = createHash('sha256').update(options.accessToken).digest('base64url');
  }
  for (const [name, value] of Object.entries(options.claims ?? {})) {
    if (value === undefined) {
      delete claims[name];
    } else {
      claims[name] = value;
    }
  }
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: options.jwk ?? key.publicJwk })
    .sign(key.privateKey);
}

/**
 * Requests a client_credentials token for the seeded agent at Mandate's token
 * endpoint, DPoP-bound to `key` when given, and returns the access token.
 */
export async function requestAgentToken(state: MandateWorld, key?: DpopKey, scope = 'mail.read'): Promise<string> {
  const tokenUrl = `${state.mandate.issuer}/token`;
  const { client, clientSecret } = state.world.agent;
  const headers: Record<string, string> = {
    authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(clientSecret ?? '')}`).toString('base64')}`,
    'content-type': 'application/x-www-form-urlencoded',
  };
  if (key !== undefined) {
    headers.dpop = await createProof(key, { htm: 'POST', htu: tokenUrl });
  }

  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers,
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: state.resource, scope }),
  });
  const body = (await response.json()) as Record<string, unknown>;
  if (response.status !== 200 || typeof body.access_token !== 'string') {
    throw new Error(`token request failed with ${response.status}: ${String(body.error)} ${String(body.error_description)}`);
  }
  if (body.token_type !== (key === undefined ? 'Bearer' : 'DPoP')) {
    throw new Error(`unexpected token_type ${String(body.token_type)}`);
  }
  return body.access_token;
}
