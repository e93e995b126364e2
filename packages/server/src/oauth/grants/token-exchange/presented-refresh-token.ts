import type { ServerContext } from '../../../context.ts';
import type { RefreshTokenTable } from '../../../store/schema.ts';
import type { DpopBinding } from '../../dpop/token-request.ts';
import { InvalidGrant, InvalidRequest } from '../../errors.ts';
import { issueRefreshToken, markRefreshTokenSpent, verifyPresentedRefreshToken } from '../../refresh-token.ts';
import type { ExchangedTokenParameter } from './sender-constraint.ts';

/**
 * Verifies a refresh token sent as `subject_token` or `actor_token` with the checks of the
 * refresh grant. It must belong to the calling client and be neither revoked nor idle. A
 * DPoP-bound one needs a proof by its key (RFC 9449 §5). A spent token is a reuse, so its
 * family and delegation are revoked (RFC 9700 §4.14.2). The token is not spent here. Failures
 * are `invalid_request` (RFC 8693 §2.2.2), not the refresh grant's `invalid_grant`.
 */
export async function verifyRefreshTokenParameter(ctx: ServerContext, clientId: string, token: string, parameter: ExchangedTokenParameter, dpop: DpopBinding | undefined): Promise<RefreshTokenTable> {
  return asInvalidRequest(parameter, () => verifyPresentedRefreshToken(ctx, token, clientId, dpop));
}

/**
 * Rotates a refresh token that was the subject token: spends it and returns its successor in
 * the same family, for the same grant scope and bound to the same DPoP key. An exchange that
 * mints an access token from a refresh token is a refresh in effect, so it follows the refresh
 * grant's rotation (RFC 9700 §4.14.2). Otherwise a copied token could mint access tokens through
 * the exchange without ever tripping reuse detection.
 */
export async function rotateSubjectRefreshToken(ctx: ServerContext, row: RefreshTokenTable, dpop: DpopBinding | undefined): Promise<string> {
  await asInvalidRequest('subject_token', () => markRefreshTokenSpent(ctx, row));

  return issueRefreshToken(ctx, {
    clientId: row.client_id,
    userId: row.user_id,
    delegationId: row.delegation_id,
    resourceId: row.resource_id,
    scope: row.scope.split(' ').filter((scope) => scope !== ''),
    familyId: row.family_id,
    // RFC 9449 §5: a bound refresh token stays bound; an unbound one becomes bound once a proof is sent.
    dpopJkt: row.dpop_jkt ?? dpop?.jkt,
  });
}

async function asInvalidRequest<T>(parameter: ExchangedTokenParameter, verify: () => Promise<T>): Promise<T> {
  try {
    return await verify();
  } catch (error) {
    if (!(error instanceof InvalidGrant)) throw error;
    throw new InvalidRequest(`The ${parameter} was rejected. ${error.description}`, { detail: `${parameter} rejected: ${error.message}`, cause: error });
  }
}
