import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { JWK, JWTPayload } from 'jose';

/** Resource identifier used as the expected `aud` in these tests. */
export const AUDIENCE = 'https://api.example.test/';
export const CLIENT_ID = 'agent-7';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/**
 * A stand-in authorization server on 127.0.0.1 that publishes RFC 8414
 * metadata and a JWKS with an Ed25519 access token key and an RSA ID token
 * key, and counts the requests for each path.
 */
export class AuthorizationServerFixture {
  readonly requestCounts = new Map<string, number>();
  /** Overrides the `issuer` member of the published metadata when set. */
  publishedIssuer: string | undefined;

  private constructor(
    readonly server: Server,
    readonly issuer: string,
    readonly accessTokenKey: KeyPair,
    readonly idTokenKey: KeyPair,
    readonly jwks: { keys: JWK[] },
  ) {}

  static async start(): Promise<AuthorizationServerFixture> {
    const accessTokenKey = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const idTokenKey = await generateKeyPair('RS256');
    const jwks = {
      keys: [
        { ...(await exportJWK(accessTokenKey.publicKey)), kid: 'at-ed25519', alg: 'EdDSA', use: 'sig' },
        { ...(await exportJWK(idTokenKey.publicKey)), kid: 'id-rsa', alg: 'RS256', use: 'sig' },
      ],
    };

    let fixture: AuthorizationServerFixture | undefined;
    const server = createServer((req, res) => {
      const path = req.url ?? '';
      fixture!.requestCounts.set(path, (fixture!.requestCounts.get(path) ?? 0) + 1);
      if (path === '/.well-known/oauth-authorization-server') {
        sendJson(res, {
          issuer: fixture!.publishedIssuer ?? fixture!.issuer,
          jwks_uri: `${fixture!.issuer}/jwks`,
          token_endpoint: `${fixture!.issuer}/token`,
          authorization_endpoint: `${fixture!.issuer}/authorize`,
        });
      } else if (path === '/jwks') {
        sendJson(res, fixture!.jwks);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;

    fixture = new AuthorizationServerFixture(server, `http://127.0.0.1:${port}`, accessTokenKey, idTokenKey, jwks);
    return fixture;
  }

  /** Returns the claims of a valid access token, for tests to override or delete members. */
  accessTokenClaims(): JWTPayload {
    const now = Math.floor(Date.now() / 1000);
    return {
      iss: this.issuer,
      sub: 'user-42',
      aud: AUDIENCE,
      client_id: CLIENT_ID,
      scope: 'repo:read issues:write',
      iat: now,
      exp: now + 300,
      jti: randomUUID(),
    };
  }

  /** Signs `claims` with the Ed25519 key as an RFC 9068 access token. */
  signAccessToken(claims: JWTPayload = this.accessTokenClaims(), header: Record<string, unknown> = {}): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'at-ed25519', ...header })
      .sign(this.accessTokenKey.privateKey);
  }

  /** Signs an OpenID Connect ID token (RS256, typ JWT) whose aud is also AUDIENCE. */
  signIdToken(): Promise<string> {
    return new SignJWT({ ...this.accessTokenClaims(), nonce: 'n-1' })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: 'id-rsa' })
      .sign(this.idTokenKey.privateKey);
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.server.close((error) => (error ? reject(error) : resolve())));
  }
}

function sendJson(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
