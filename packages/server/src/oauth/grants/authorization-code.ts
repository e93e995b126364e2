import type { ServerContext } from '../../context.ts';
import { clientRegisteredGrant, type Client } from '../../agents/clients.ts';
import { findUser } from '../../identity/users.ts';
import { findResourceById } from '../../resources/registry.ts';
import { nowSeconds, sha256Hex } from '../../store/ids.ts';
import { repeatedParam, requiredParam, type FormBody } from '../../http/form.ts';
import { InvalidGrant, InvalidTarget } from '../errors.ts';
import { findLiveDelegation } from '../delegation.ts';
import { issueIdToken } from '../id-token.ts';
import { verifierMatches } from '../pkce.ts';
import { issueRefreshToken } from '../refresh-token.ts';
import { grantReasons, grantScope, withOpenidScope } from '../scope.ts';
import { issueAuditedAccessToken, type TokenResponse } from '../token-response.ts';
import { requireBoundKey, tokenTypeFor, type DpopBinding } from '../dpop/token-request.ts';

/**
 * RFC 6749 §4.1.3 with PKCE (RFC 7636) and RFC 8707: redeems a code once, for the client it
 * was issued to, at the exact redirect URI, and recomputes the scope from the current roles. A
 * failed check does not spend the code, and a code spent already is a replay that revokes what
 * the code issued.
 */
export async function authorizationCodeGrant(ctx: ServerContext, client: Client, form: FormBody, dpop?: DpopBinding): Promise<TokenResponse> {
  const code = requiredParam(form, 'code');
  const redirectUri = requiredParam(form, 'redirect_uri');
  const verifier = requiredParam(form, 'code_verifier');
  const resources = repeatedParam(form, 'resource');

  const row = await ctx.db.selectFrom('authorization_codes').selectAll().where('code_hash', '=', sha256Hex(code)).where('tenant_id', '=', ctx.tenantId).executeTakeFirst();
  if (row === undefined || row.client_id !== client.client_id) throw new InvalidGrant('The authorization code is invalid.');
  // RFC 9449 §10: a code requested with dpop_jkt is redeemed only with a proof by that key.
  requireBoundKey(row.dpop_jkt, dpop, 'authorization code');

  // Every check comes before the code is spent, so a failed attempt (such as a wrong verifier
  // from someone who saw the code of a public client) leaves the code to its client.
  const now = nowSeconds();
  if (row.expires_at <= now) throw new InvalidGrant('The authorization code has expired.');
  // RFC 6749 §4.1.3: the redirect URI must be identical to the one in the authorization request.
  if (row.redirect_uri !== redirectUri) throw new InvalidGrant('redirect_uri does not match the authorization request.');
  // RFC 7636 §4.6: the verifier must hash to the challenge of the authorization request.
  if (!verifierMatches(verifier, row.code_challenge)) throw new InvalidGrant('The code_verifier does not match the code_challenge (PKCE).');

  const resource = await findResourceById(ctx, row.resource_id);
  if (resource === undefined) throw new InvalidGrant('The resource of this authorization no longer exists.');
  if (resources.length > 0 && (resources.length !== 1 || resources[0] !== resource.identifier)) {
    throw new InvalidTarget('The resource must be the one named in the authorization request.');
  }

  // Spent atomically: of two redemptions that pass every check, only one updates the row, and
  // the other is a replay (RFC 6749 §4.1.2).
  const spent = await ctx.db.updateTable('authorization_codes').set({ used_at: now }).where('code_hash', '=', row.code_hash).where('used_at', 'is', null).executeTakeFirst();
  if (Number(spent.numUpdatedRows) !== 1) {
    await revokeTokensOfReplayedCode(ctx, row.delegation_id, client.client_id);
    throw new InvalidGrant('The authorization code was already used; the tokens issued with it are revoked.');
  }

  const delegation = await findLiveDelegation(ctx, row.delegation_id);
  const user = await findUser(ctx, row.user_id);
  if (delegation === undefined || user === undefined || user.status !== 'active') throw new InvalidGrant('The authorization was revoked.');

  const agentId = client.kind === 'agent' ? client.client_id : undefined;
  const granted = await grantScope(ctx, { userId: user.id, agentId }, resource, row.scope.split(' '), new Set(delegation.scope.split(' ')));
  const tokenScope = withOpenidScope(granted.scope, row.openid === 1);

  const { token, expiresIn } = await issueAuditedAccessToken(ctx, {
    grantType: 'authorization_code',
    subject: user.id,
    userId: user.id,
    clientId: client.client_id,
    actor: agentId,
    audience: resource.identifier,
    scope: tokenScope,
    lifetimeSeconds: resource.access_token_ttl_seconds,
    delegationId: delegation.id,
    dpopJkt: dpop?.jkt,
    reasons: grantReasons(granted.decisions),
  });
  const response: TokenResponse = { access_token: token, token_type: tokenTypeFor(dpop), expires_in: expiresIn, scope: tokenScope.join(' ') };
  // A client that registered without the refresh_token grant (RFC 7591 §2) gets no refresh token.
  if (clientRegisteredGrant(client, 'refresh_token')) {
    response.refresh_token = await issueRefreshToken(ctx, { clientId: client.client_id, userId: user.id, delegationId: delegation.id, resourceId: resource.id, scope: tokenScope, dpopJkt: dpop?.jkt });
  }
  if (row.openid === 1) response.id_token = await issueIdToken(ctx, { user, clientId: client.client_id, nonce: row.nonce, authTime: Number(row.auth_time) });
  return response;
}

/**
 * RFC 6749 §4.1.2 and RFC 9700 §4.2.4: a replayed code revokes what the code produced. Each
 * code has a delegation of its own, so revoking it (with its refresh tokens) also stops the
 * access tokens already issued, whose delegation the gateway checks on every call.
 */
async function revokeTokensOfReplayedCode(ctx: ServerContext, delegationId: string, clientId: string): Promise<void> {
  const now = nowSeconds();
  await ctx.db.transaction().execute(async (trx) => {
    await trx.updateTable('refresh_tokens').set({ revoked_at: now }).where('delegation_id', '=', delegationId).where('client_id', '=', clientId).where('revoked_at', 'is', null).execute();
    await trx.updateTable('delegations').set({ revoked_at: now, revoked_reason: 'authorization_code_replayed' }).where('id', '=', delegationId).where('revoked_at', 'is', null).execute();
    await ctx.audit(
      {
        event: 'authorization_code.replayed',
        agent: clientId,
        target: { delegation_id: delegationId },
        outcome: { decision: 'denied', revoked: ['refresh_tokens', 'delegation'] },
        reason: { rule: 'an authorization code was redeemed twice; its delegation and refresh tokens are revoked' },
      },
      trx,
    );
  });
}
