import { SignJWT, createLocalJWKSet, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose';
import type { ServerContext } from '../context.ts';
import { newId, nowSeconds } from '../store/ids.ts';
import { InvalidToken } from './errors.ts';
import { isAccessTokenRevoked } from './revoked-access-tokens.ts';

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
  /** RFC 8693 §4.1: the agent acting for `sub`, with earlier actors of a delegation chain nested inside. */
  act?: ActorClaim;
  /** RFC 8693 §4.4: the only party that may become the actor when this token is exchanged. */
  may_act?: { sub: string; iss?: string };
  delegation_id?: string;
  tenant: string;
  /** RFC 9449 §6.1: the thumbprint of the DPoP key the token is bound to. */
  cnf?: { jkt: string };
  /** RFC 9396 §9.1: the authorization details the person approved, exactly as approved. */
  authorization_details?: unknown[];
}

/** An RFC 8693 §4.1 `act` claim: the current actor, and the actor before it in `act`. */
export interface ActorClaim {
  sub: string;
  act?: ActorClaim;
}

export interface IssueAccessToken {
  subject: string;
  clientId: string;
  audience: string;
  scope: string[];
  lifetimeSeconds: number;
  actor?: string | undefined;
  /**
   * The whole actor chain of a delegated token, current actor first; it replaces `actor` in the
   * `act` claim, so its first entry should equal `actor`.
   */
  actorChain?: string[] | undefined;
  /** Client id for the `may_act` claim; no grant sets it yet. */
  mayAct?: string | undefined;
  delegationId?: string | undefined;
  /** RFC 9449 §6.1: binds the token to this DPoP key thumbprint with `cnf.jkt`. */
  dpopJkt?: string | undefined;
  /** RFC 9396 §9.1: the `authorization_details` claim; only the CIBA grant sets it. */
  authorizationDetails?: unknown[] | undefined;
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
    ...actClaim(input),
    ...(input.mayAct === undefined ? {} : { may_act: { sub: input.mayAct } }),
    ...(input.delegationId === undefined ? {} : { delegation_id: input.delegationId }),
    ...(input.dpopJkt === undefined ? {} : { cnf: { jkt: input.dpopJkt } }),
    ...(input.authorizationDetails === undefined ? {} : { authorization_details: input.authorizationDetails }),
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
  let claims: AccessTokenClaims;
  try {
    const { payload } = await jwtVerify(token, jwks, {
      issuer: ctx.config.issuer,
      audience,
      typ: ACCESS_TOKEN_TYP,
      algorithms: [ctx.keys.accessToken.alg],
      requiredClaims: ['sub', 'client_id', 'iat', 'exp', 'jti'],
    });
    if (typeof payload.scope !== 'string' || typeof payload.client_id !== 'string') throw new Error('scope or client_id is not a string');
    claims = payload as AccessTokenClaims;
  } catch (error) {
    throw new InvalidToken(describeFailure(error), { detail: `access token rejected: ${(error as Error).message}`, cause: error });
  }

  // RFC 7009 §2: a revoked token is invalid before it expires. A failed lookup throws, so the token is not accepted.
  if (await isAccessTokenRevoked(ctx, claims.jti)) throw new InvalidToken('The access token has been revoked.', { detail: `access token ${claims.jti} was revoked` });
  return claims;
}

/**
 * Verifies an access token whatever its audience, for the endpoints where Mandate itself consumes
 * it (token exchange, introspection, userinfo). A bad or revoked token is `invalid_token`; a
 * failed revocation lookup throws its own error.
 */
export async function verifyOwnAccessToken(ctx: ServerContext, token: string): Promise<AccessTokenClaims> {
  const jwks = createLocalJWKSet({ keys: [ctx.keys.accessToken.publicJwk] });
  let claims: AccessTokenClaims;
  try {
    const { payload } = await jwtVerify(token, jwks, {
      issuer: ctx.config.issuer,
      typ: ACCESS_TOKEN_TYP,
      algorithms: [ctx.keys.accessToken.alg],
      requiredClaims: ['sub', 'client_id', 'aud', 'iat', 'exp', 'jti'],
    });
    if (typeof payload.aud !== 'string' || typeof payload.scope !== 'string') throw new Error('aud or scope has the wrong type');
    claims = payload as AccessTokenClaims;
  } catch (error) {
    throw new InvalidToken(describeFailure(error), { detail: `access token rejected: ${(error as Error).message}`, cause: error });
  }

  if (await isAccessTokenRevoked(ctx, claims.jti)) throw new InvalidToken('The access token has been revoked.', { detail: `access token ${claims.jti} was revoked` });
  return claims;
}

/** Builds the nested `act` claim from the actor chain, or from the single actor. */
function actClaim(input: IssueAccessToken): { act?: ActorClaim } {
  const chain = input.actorChain ?? (input.actor === undefined ? [] : [input.actor]);
  const act = chain.reduceRight<ActorClaim | undefined>((inner, sub) => (inner === undefined ? { sub } : { sub, act: inner }), undefined);
  return act === undefined ? {} : { act };
}

function describeFailure(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'The access token has expired.';
  if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'aud') return 'The access token is not meant for this resource.';
  return 'The access token is invalid.';
}
