import type { ServerContext } from '../../../context.ts';
import { findClient, type Client } from '../../../agents/clients.ts';
import { verifyOwnAccessToken, type AccessTokenClaims } from '../../access-token.ts';
import type { DpopBinding } from '../../dpop/token-request.ts';
import { InvalidRequest } from '../../errors.ts';
import { verifyRefreshTokenParameter } from './presented-refresh-token.ts';
import { boundKeyThumbprint, requireProofOfPossession } from './sender-constraint.ts';
import type { TokenType } from './token-types.ts';

/** The agent an actor token identifies. */
export interface ActorIdentity {
  clientId: string;
  /**
   * The RFC 7638 thumbprint of the DPoP key that another agent's actor token is bound to. The
   * issued token is bound to that key, so only that agent can use it. Undefined for the calling
   * agent's own token, whose key the request's proof has already proven.
   */
  boundJkt: string | undefined;
}

/**
 * Verifies the actor token (RFC 8693 §2.1), which identifies the agent that becomes the actor.
 * An `access_token` or `jwt` must be an agent's own token, with its client id as `sub` and as
 * `client_id`, and no `act`:
 *
 * - The calling agent's own token needs the request's proof to be signed by its DPoP key when
 *   it is bound to one.
 * - Another agent's own token names the sub-agent that the calling agent hands its token on
 *   to. authorizeNewActor decides whether the calling agent may do that. The calling agent
 *   cannot sign with the sub-agent's key, so no proof is required, and the issued token is bound
 *   to the sub-agent's key instead.
 *
 * A `refresh_token` must be a live one issued to the calling agent, and it is not spent. An
 * `id_token` names a person, never an agent, so it is rejected. Every failure is
 * `invalid_request` (RFC 8693 §2.2.2).
 */
export async function verifyActorToken(ctx: ServerContext, client: Client, token: string, type: TokenType, dpop: DpopBinding | undefined): Promise<ActorIdentity> {
  if (type === 'id_token') throw new InvalidRequest('An ID token names a person and cannot identify the actor. Send the agent\'s own access token as actor_token.');
  if (type === 'refresh_token') {
    await verifyRefreshTokenParameter(ctx, client.client_id, token, 'actor_token', dpop);
    return { clientId: client.client_id, boundJkt: undefined };
  }

  let claims: AccessTokenClaims;
  try {
    claims = await verifyOwnAccessToken(ctx, token);
  } catch (error) {
    throw new InvalidRequest('The actor_token is invalid or expired.', { detail: `actor_token rejected: ${(error as Error).message}`, cause: error });
  }
  // Only client_credentials issues a token whose subject is the client itself.
  if (claims.sub !== claims.client_id || claims.act !== undefined || claims.delegation_id !== undefined || claims.tenant !== ctx.tenantId) {
    throw new InvalidRequest('The actor_token must be an agent\'s own access token, from the client_credentials grant.');
  }

  const boundJkt = boundKeyThumbprint(claims.cnf, 'actor_token');
  if (claims.sub === client.client_id) {
    requireProofOfPossession(boundJkt, dpop, 'actor_token');
    return { clientId: client.client_id, boundJkt: undefined };
  }

  const subAgent = await findClient(ctx, claims.sub);
  if (subAgent === undefined || subAgent.kind !== 'agent' || subAgent.status !== 'active') {
    throw new InvalidRequest(`The actor_token names ${claims.sub}, which is not an active agent, so it cannot become the actor.`);
  }
  // The issued token takes the actor token's binding, and an agent that requires DPoP gets only bound tokens.
  if (subAgent.require_dpop === 1 && boundJkt === undefined) {
    throw new InvalidRequest(`The agent ${subAgent.client_id} requires DPoP, so its actor_token must be DPoP-bound.`);
  }
  return { clientId: subAgent.client_id, boundJkt };
}
