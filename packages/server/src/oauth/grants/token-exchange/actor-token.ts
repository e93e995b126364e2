import type { ServerContext } from '../../../context.ts';
import type { Client } from '../../../agents/clients.ts';
import { nowSeconds, sha256Hex } from '../../../store/ids.ts';
import { verifyOwnAccessToken, type AccessTokenClaims } from '../../access-token.ts';
import { InvalidRequest } from '../../errors.ts';
import type { TokenType } from './token-types.ts';

/**
 * Verifies that the actor token (RFC 8693 §2.1) identifies the calling agent, who becomes the
 * actor. An `access_token` or `jwt` must be the agent's own token, with its client id as `sub`
 * and no `act`. A `refresh_token` must be a live one issued to the agent. An `id_token` names a
 * person, never an agent, so it is rejected. Every failure is `invalid_request` (§2.2.2).
 */
export async function verifyActorToken(ctx: ServerContext, client: Client, token: string, type: TokenType): Promise<void> {
  if (type === 'id_token') throw new InvalidRequest('An ID token names a person and cannot identify the actor. Send the agent\'s own access token as actor_token.');
  if (type === 'refresh_token') return verifyActorRefreshToken(ctx, client, token);

  let claims: AccessTokenClaims;
  try {
    claims = await verifyOwnAccessToken(ctx, token);
  } catch (error) {
    throw new InvalidRequest('The actor_token is invalid or expired.', { detail: `actor_token rejected: ${(error as Error).message}`, cause: error });
  }
  if (claims.sub !== client.client_id || claims.act !== undefined || claims.tenant !== ctx.tenantId) {
    throw new InvalidRequest('The actor_token must be the calling agent\'s own access token.');
  }
}

async function verifyActorRefreshToken(ctx: ServerContext, client: Client, token: string): Promise<void> {
  const row = await ctx.db.selectFrom('refresh_tokens').select(['client_id', 'revoked_at', 'used_at', 'idle_expires_at']).where('tenant_id', '=', ctx.tenantId).where('token_hash', '=', sha256Hex(token)).executeTakeFirst();
  const live = row !== undefined && row.client_id === client.client_id && row.revoked_at === null && row.used_at === null && row.idle_expires_at > nowSeconds();
  if (!live) throw new InvalidRequest('The actor_token is not a live refresh token of the calling agent.');
}
