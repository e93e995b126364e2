import { createLocalJWKSet, jwtVerify } from 'jose';
import type { ServerContext } from '../../../context.ts';
import type { Client } from '../../../agents/clients.ts';
import { findUser } from '../../../identity/users.ts';
import { findResourceById } from '../../../resources/registry.ts';
import type { RefreshTokenTable } from '../../../store/schema.ts';
import { verifyOwnAccessToken, type AccessTokenClaims } from '../../access-token.ts';
import type { DpopBinding } from '../../dpop/token-request.ts';
import { InvalidRequest } from '../../errors.ts';
import { readActorChain } from './actor-chain.ts';
import { verifyRefreshTokenParameter } from './presented-refresh-token.ts';
import { boundKeyThumbprint, requireProofOfPossession } from './sender-constraint.ts';
import type { TokenType } from './token-types.ts';

/** A verified subject token, reduced to the facts the exchange uses whatever its type. */
export interface Subject {
  type: TokenType;
  /** The person the subject token represents. */
  userId: string;
  /** The resource identifier the subject token is for; undefined for an ID token. */
  audience: string | undefined;
  /** The scope the subject token carries; undefined for an ID token, which carries none. */
  scope: Set<string> | undefined;
  /** Unix time after which the subject token is no longer valid; the issued token ends by then. */
  expiresAt: number;
  /** Client ids of the agents already acting for the person, the current actor first. */
  actorChain: string[];
  /** The delegation the subject token was issued under, when it names one. */
  delegationId: string | undefined;
  /** The raw RFC 8693 §4.4 `may_act` claim, when the subject token has one. */
  mayAct: unknown;
  /** The `jti` of a JWT subject token, for the audit log. */
  jti: string | undefined;
  /** The stored refresh token when the subject token is one; the exchange rotates it. */
  refreshToken: RefreshTokenTable | undefined;
}

/**
 * Verifies the subject token according to `subject_token_type` (RFC 8693 §2.1) and requires
 * it to name an active person. Every failure is `invalid_request` (RFC 8693 §2.2.2); the
 * reason goes to the log only.
 *
 * - `access_token` and `jwt`: an access token Mandate signed, with any audience. A token bound
 *   to a DPoP key needs the request's proof to be signed by that key.
 * - `refresh_token`: a live refresh token of the calling client, with a proof by its DPoP key
 *   when it is bound to one. It represents its grant's person, and the calling agent is already
 *   that grant's actor. A spent one is a reuse and revokes its family.
 * - `id_token`: an ID token Mandate signed for the calling client (its `aud`). An ID token
 *   names only the person, so it carries no scope and no resource.
 */
export async function verifySubjectToken(ctx: ServerContext, client: Client, token: string, type: TokenType, dpop: DpopBinding | undefined): Promise<Subject> {
  const subject = await verifyByType(ctx, client, token, type, dpop);

  const user = await findUser(ctx, subject.userId);
  if (user === undefined || user.status !== 'active') throw new InvalidRequest('The subject_token does not represent an active person.');
  return subject;
}

async function verifyByType(ctx: ServerContext, client: Client, token: string, type: TokenType, dpop: DpopBinding | undefined): Promise<Subject> {
  if (type === 'refresh_token') return verifyRefreshTokenSubject(ctx, client, token, dpop);
  if (type === 'id_token') return verifyIdToken(ctx, client, token);
  return verifyAccessTokenSubject(ctx, token, dpop);
}

async function verifyAccessTokenSubject(ctx: ServerContext, token: string, dpop: DpopBinding | undefined): Promise<Subject> {
  let claims: AccessTokenClaims;
  try {
    claims = await verifyOwnAccessToken(ctx, token);
  } catch (error) {
    throw new InvalidRequest('The subject_token is invalid or expired.', { detail: `subject_token rejected: ${(error as Error).message}`, cause: error });
  }
  if (claims.tenant !== ctx.tenantId) throw new InvalidRequest('The subject_token is invalid or expired.', { detail: `subject_token of tenant ${String(claims.tenant)}` });
  if (claims.delegation_id !== undefined && typeof claims.delegation_id !== 'string') throw new InvalidRequest('The subject_token has a malformed "delegation_id" claim.');
  // The exchanged token would not carry the RFC 9396 details, and so would lose the approved arguments' binding.
  if (claims.authorization_details !== undefined) throw new InvalidRequest('A token with authorization_details cannot be exchanged; it is valid only as the person approved it.');
  requireProofOfPossession(boundKeyThumbprint(claims.cnf, 'subject_token'), dpop, 'subject_token');

  return {
    type: 'access_token',
    userId: claims.sub,
    audience: claims.aud,
    scope: new Set(claims.scope.split(' ').filter((scope) => scope !== '')),
    expiresAt: claims.exp,
    actorChain: readActorChain(claims.act, 'subject_token'),
    delegationId: claims.delegation_id,
    mayAct: claims.may_act,
    jti: claims.jti,
    refreshToken: undefined,
  };
}

async function verifyRefreshTokenSubject(ctx: ServerContext, client: Client, token: string, dpop: DpopBinding | undefined): Promise<Subject> {
  // Only the client a refresh token was issued to may present it (RFC 6749 §10.4).
  const row = await verifyRefreshTokenParameter(ctx, client.client_id, token, 'subject_token', dpop);

  const resource = await findResourceById(ctx, row.resource_id);
  if (resource === undefined) throw new InvalidRequest('The subject_token\'s resource no longer exists.');

  return {
    type: 'refresh_token',
    userId: row.user_id,
    audience: resource.identifier,
    scope: new Set(row.scope.split(' ').filter((scope) => scope !== '')),
    expiresAt: row.idle_expires_at,
    actorChain: [client.client_id],
    delegationId: row.delegation_id,
    mayAct: undefined,
    jti: undefined,
    refreshToken: row,
  };
}

async function verifyIdToken(ctx: ServerContext, client: Client, token: string): Promise<Subject> {
  const jwks = createLocalJWKSet({ keys: [ctx.keys.idToken.publicJwk] });
  try {
    // OIDC Core §3.1.3.7: the issuer must be this server and the audience the calling client.
    const { payload } = await jwtVerify(token, jwks, {
      issuer: ctx.config.issuer,
      audience: client.client_id,
      typ: 'JWT',
      algorithms: [ctx.keys.idToken.alg],
      requiredClaims: ['sub', 'iat', 'exp'],
    });
    return {
      type: 'id_token',
      userId: payload.sub as string,
      audience: undefined,
      scope: undefined,
      expiresAt: payload.exp as number,
      actorChain: [],
      delegationId: undefined,
      mayAct: payload.may_act,
      jti: undefined,
      refreshToken: undefined,
    };
  } catch (error) {
    throw new InvalidRequest('The subject_token is not a valid ID token issued to this client.', { detail: `subject_token rejected: ${(error as Error).message}`, cause: error });
  }
}
