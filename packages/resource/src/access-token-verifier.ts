import { createRemoteJWKSet, customFetch, errors, jwtVerify } from 'jose';
import type { JWSAlgorithm, JWTPayload, JWTVerifyGetKey } from 'jose';

import { fetchAuthorizationServerMetadata } from './authorization-server-metadata.ts';
import { InvalidTokenError } from './errors.ts';
import { parseSecureUrl } from './secure-url.ts';

export interface AccessTokenVerifierOptions {
  /** Expected `iss` claim, compared exactly. Also the base for metadata discovery. */
  issuer: string;
  /** Resource identifier URI of this server; the token's `aud` must contain it. */
  audience: string;
  /** JWKS URL. Defaults to the `jwks_uri` of the issuer's RFC 8414 metadata, fetched once. */
  jwksUri?: string;
  /** Allowed clock skew in seconds for `exp` and `iat`. Defaults to 5. */
  clockToleranceSeconds?: number;
  /** Accepted JWS `alg` values. Defaults to EdDSA and ES256. Symmetric algorithms and `none` are rejected. */
  algorithms?: JWSAlgorithm[];
  /** `realm` of the challenge in the errors this verifier throws. Defaults to `audience`. */
  realm?: string;
  /** fetch implementation for metadata and JWKS requests. Defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** The claims of a verified RFC 9068 access token. */
export interface AccessTokenClaims {
  iss: string;
  /** The resource owner's user id, or the client_id for a client_credentials token. */
  sub: string;
  aud: string[];
  clientId: string;
  scopes: string[];
  /** The agent acting on behalf of `sub` (RFC 8693 §4.1 `act` claim). */
  act?: { sub: string };
  delegationId?: string;
  tenant?: string;
  /** RFC 9449 §6.1 confirmation: the RFC 7638 thumbprint of the DPoP key the token is bound to. */
  cnf?: { jkt: string };
  jti: string;
  /** Expiry, in seconds since the Unix epoch. */
  exp: number;
  /** Issue time, in seconds since the Unix epoch. */
  iat: number;
  /** The full verified claims set. */
  raw: JWTPayload;
}

const DEFAULT_ALGORITHMS: JWSAlgorithm[] = ['EdDSA', 'ES256'];
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;

// RFC 9068 §2.2 makes all of these claims mandatory.
const REQUIRED_CLAIMS = ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti'];

/**
 * Verifies JWT access tokens per RFC 9068 §4: the `typ` header, the signature
 * against the issuer's JWKS, `iss`, `aud`, `exp`, and the presence of the
 * required claims. Every rejection is an InvalidTokenError.
 */
export class AccessTokenVerifier {
  readonly #issuer: string;
  readonly #audience: string;
  readonly #algorithms: JWSAlgorithm[];
  readonly #clockToleranceSeconds: number;
  readonly #realm: string;
  readonly #fetch: typeof fetch;
  readonly #configuredJwksUri: URL | undefined;
  #keySet: Promise<JWTVerifyGetKey> | undefined;

  constructor(options: AccessTokenVerifierOptions) {
    parseSecureUrl(options.issuer, 'issuer');
    if (typeof options.audience !== 'string' || options.audience === '') {
      throw new TypeError('audience must be a non-empty string (the resource identifier URI)');
    }
    const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS;
    if (algorithms.length === 0) {
      throw new TypeError('algorithms must name at least one JWS algorithm');
    }
    // A symmetric alg would let anyone holding the published key bytes forge
    // tokens (RFC 8725 §2.1), and `none` carries no signature at all.
    const unsafe = algorithms.find((alg) => alg === 'none' || alg.startsWith('HS'));
    if (unsafe !== undefined) {
      throw new TypeError(`algorithms must contain only asymmetric algorithms, found ${unsafe}`);
    }

    this.#issuer = options.issuer;
    this.#audience = options.audience;
    this.#algorithms = [...algorithms];
    this.#clockToleranceSeconds = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
    this.#realm = options.realm ?? options.audience;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#configuredJwksUri =
      options.jwksUri === undefined ? undefined : parseSecureUrl(options.jwksUri, 'jwksUri');
  }

  /**
   * Verifies `token` and returns its claims. Throws InvalidTokenError whose
   * description is safe to send to the client and whose `cause` contains the
   * detail, including metadata or JWKS fetch failures.
   */
  async verify(token: string): Promise<AccessTokenClaims> {
    let payload: JWTPayload;
    try {
      const keySet = await this.#getKeySet();
      ({ payload } = await jwtVerify(token, keySet, {
        issuer: this.#issuer,
        audience: this.#audience,
        algorithms: this.#algorithms,
        // RFC 9068 §4: reject any JWT whose typ is not at+jwt, such as an
        // ID token signed by the same keys. jose compares case-insensitively
        // and accepts the application/ prefix (RFC 8725 §3.11).
        typ: 'at+jwt',
        clockTolerance: this.#clockToleranceSeconds,
        requiredClaims: REQUIRED_CLAIMS,
      }));
    } catch (error) {
      throw new InvalidTokenError(publicDescription(error), { realm: this.#realm, cause: error });
    }
    return this.#readClaims(payload);
  }

  #getKeySet(): Promise<JWTVerifyGetKey> {
    if (this.#keySet === undefined) {
      this.#keySet = this.#createKeySet();
      // A failed discovery is not cached, so the next request tries again.
      this.#keySet.catch(() => {
        this.#keySet = undefined;
      });
    }
    return this.#keySet;
  }

  async #createKeySet(): Promise<JWTVerifyGetKey> {
    let jwksUri = this.#configuredJwksUri;
    if (jwksUri === undefined) {
      const metadata = await fetchAuthorizationServerMetadata(this.#issuer, this.#fetch);
      jwksUri = parseSecureUrl(metadata.jwks_uri, 'jwks_uri in the authorization server metadata');
    }
    return createRemoteJWKSet(jwksUri, { [customFetch]: this.#fetch });
  }

  #readClaims(payload: JWTPayload): AccessTokenClaims {
    const reject = (detail: string): never => {
      throw new InvalidTokenError('The access token is invalid.', {
        realm: this.#realm,
        cause: new Error(detail),
      });
    };

    const now = Math.floor(Date.now() / 1000);
    const iat = payload.iat as number;
    if (iat > now + this.#clockToleranceSeconds) {
      reject('iat claim is in the future');
    }

    const sub = payload.sub;
    const clientId = payload.client_id;
    const jti = payload.jti;
    const scope = payload.scope;
    if (typeof sub !== 'string' || sub === '') reject('sub claim is not a non-empty string');
    if (typeof clientId !== 'string' || clientId === '') reject('client_id claim is not a non-empty string');
    if (typeof jti !== 'string' || jti === '') reject('jti claim is not a non-empty string');
    if (scope !== undefined && typeof scope !== 'string') reject('scope claim is not a string');

    const claims: AccessTokenClaims = {
      iss: payload.iss as string,
      sub: sub as string,
      aud: typeof payload.aud === 'string' ? [payload.aud] : [...(payload.aud as string[])],
      clientId: clientId as string,
      // RFC 9068 §2.2.3 and RFC 6749 §3.3: scope values are separated by spaces.
      scopes: typeof scope === 'string' ? scope.split(' ').filter((token) => token !== '') : [],
      jti: jti as string,
      exp: payload.exp as number,
      iat,
      raw: payload,
    };

    if (payload.act !== undefined) {
      const act = payload.act as { sub?: unknown } | null;
      if (typeof act !== 'object' || act === null || typeof act.sub !== 'string' || act.sub === '') {
        return reject('act claim is not an object with a non-empty string sub');
      }
      claims.act = { sub: act.sub };
    }

    const delegationId = payload.delegation_id;
    if (delegationId !== undefined) {
      if (typeof delegationId !== 'string') reject('delegation_id claim is not a string');
      claims.delegationId = delegationId as string;
    }
    if (payload.cnf !== undefined) {
      const cnf = payload.cnf as { jkt?: unknown } | null;
      if (typeof cnf !== 'object' || cnf === null || typeof cnf.jkt !== 'string' || cnf.jkt === '') {
        return reject('cnf claim is not an object with a non-empty string jkt');
      }
      claims.cnf = { jkt: cnf.jkt };
    }

    const tenant = payload.tenant;
    if (tenant !== undefined) {
      if (typeof tenant !== 'string') reject('tenant claim is not a string');
      claims.tenant = tenant as string;
    }

    return claims;
  }
}

/** Returns a description for the client that names the failure class but no internals. */
function publicDescription(error: unknown): string {
  if (error instanceof errors.JWTExpired) {
    return 'The access token has expired.';
  }
  if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'aud') {
    return 'The access token is not intended for this resource.';
  }
  return 'The access token is invalid.';
}
