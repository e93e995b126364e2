import { SignJWT, createLocalJWKSet, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose';
import type { ServerContext } from '../context.ts';
import { newId, nowSeconds } from '../store/ids.ts';
import { InvalidToken } from './errors.ts';

/** RFC 9068 §2.1: the media type of JWT access tokens, in the `typ` header. */
export const ACCESS_TOKEN_TYP = 'at+jwt';

export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string;
  client_id: string;
  scope: string;
  iat: number;
  exp: number;
  jti: string;
  /** RFC 8693 §4.1: the agent acting for `sub`. */
  act?: { sub: string };
  delegation_id?: string;
  tenant: string;
}

export interface IssueAccessToken {
  subject: string;
  clientId: string;
  audience: string;
  scope: string[];
  lifetimeSeconds: number;
  actor?: string | undefined;
  delegationId?: string | undefined;
}

export interface IssuedAccessToken {
  token: string;
  claims: AccessTokenClaims;
}

/** Signs an RFC 9068 access token with the current access token key. */
export async function issueAccessToken(ctx: ServerContext, input: IssueAccessToken): Promise<IssuedAccessToken> {
  const iat = nowSeconds();
  const claims: AccessTokenClaims = {
    iss: ctx.config.issuer,
    sub: input.subject,
    aud: input.audience,
    client_id: input.clientId,
    scope: input.scope.join(' '),
    iat,
    exp: iat + input.lifetimeSeconds,
    jti: newId('at'),
    tenant: ctx.tenantId,
    ...(input.actor === undefined ? {} : { act: { sub: input.actor } }),
    ...(input.delegationId === undefined ? {} : { delegation_id: input.delegationId }),
  };
  const key = ctx.keys.accessToken;
  const token = await new SignJWT(claims).setProtectedHeader({ alg: key.alg, typ: ACCESS_TOKEN_TYP, kid: key.kid }).sign(key.privateKey);
  return { token, claims };
}

/**
 * Verifies an access token that Mandate issued, as RFC 9068 §4 requires of a resource server:
 * the `typ` header (which rejects ID tokens), the signature by a published access token key,
 * `iss`, `aud` and `exp`. Every failure is `invalid_token`; the reason goes to the log only.
 */
export async function verifyAccessToken(ctx: ServerContext, token: string, audience: string): Promise<AccessTokenClaims> {
  const jwks = createLocalJWKSet({ keys: [ctx.keys.accessToken.publicJwk] });
  try {
    const { payload } = await jwtVerify(token, jwks, {
      issuer: ctx.config.issuer,
      audience,
      typ: ACCESS_TOKEN_TYP,
      algorithms: [ctx.keys.accessToken.alg],
      requiredClaims: ['sub', 'client_id', 'iat', 'exp', 'jti'],
    });
    if (typeof payload.scope !== 'string' || typeof payload.client_id !== 'string') throw new Error('scope or client_id is not a string');
    return payload as AccessTokenClaims;
  } catch (error) {
    throw new InvalidToken(describeFailure(error), { detail: `access token rejected: ${(error as Error).message}`, cause: error });
  }
}

/** Verifies an access token whatever its audience: for token exchange, where Mandate itself is the consumer. */
export async function verifyOwnAccessToken(ctx: ServerContext, token: string): Promise<AccessTokenClaims> {
  const jwks = createLocalJWKSet({ keys: [ctx.keys.accessToken.publicJwk] });
  const { payload } = await jwtVerify(token, jwks, {
    issuer: ctx.config.issuer,
    typ: ACCESS_TOKEN_TYP,
    algorithms: [ctx.keys.accessToken.alg],
    requiredClaims: ['sub', 'client_id', 'aud', 'iat', 'exp', 'jti'],
  });
  if (typeof payload.aud !== 'string' || typeof payload.scope !== 'string') throw new Error('aud or scope has the wrong type');
  return payload as AccessTokenClaims;
}

function describeFailure(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'The access token has expired.';
  if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'aud') return 'The access token is not meant for this resource.';
  return 'The access token is invalid.';
}
