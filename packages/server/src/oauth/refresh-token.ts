import type { ServerContext } from '../context.ts';
import { newId, newSecret, nowSeconds, sha256Hex } from '../store/ids.ts';
import type { RefreshTokenTable } from '../store/schema.ts';
import { InvalidGrant } from './errors.ts';
import { requireBoundKey, type DpopBinding } from './dpop/token-request.ts';

export interface NewRefreshToken {
  clientId: string;
  userId: string;
  delegationId: string;
  resourceId: string;
  scope: string[];
  /** The family of an earlier token this one replaces; a new family otherwise. */
  familyId?: string | undefined;
  /** RFC 9449 §5: the DPoP key thumbprint the token is bound to. */
  dpopJkt?: string | undefined;
}

/** Creates an opaque refresh token; only its SHA-256 digest is stored. */
export async function issueRefreshToken(ctx: ServerContext, input: NewRefreshToken, db: ServerContext['db'] = ctx.db): Promise<string> {
  const token = `rt_${newSecret()}`;
  const now = nowSeconds();
  await db
    .insertInto('refresh_tokens')
    .values({
      id: newId('rtk'),
      token_hash: sha256Hex(token),
      family_id: input.familyId ?? newId('rtf'),
      tenant_id: ctx.tenantId,
      client_id: input.clientId,
      user_id: input.userId,
      delegation_id: input.delegationId,
      resource_id: input.resourceId,
      scope: input.scope.join(' '),
      created_at: now,
      idle_expires_at: now + ctx.config.refreshTokenIdleSeconds,
      used_at: null,
      revoked_at: null,
      dpop_jkt: input.dpopJkt ?? null,
    })
    .execute();
  return token;
}

/**
 * Spends a refresh token for its client: it must be known, unspent, unrevoked and not idle too
 * long. A second use of a spent token means it leaked, so the whole family and its delegation
 * are revoked (RFC 9700 §4.14.2). Marking the token spent is a conditional update, so two
 * concurrent uses cannot both succeed, and the second is treated as a reuse.
 */
export async function spendRefreshToken(ctx: ServerContext, token: string, clientId: string, dpop?: DpopBinding): Promise<RefreshTokenTable> {
  const row = await verifyPresentedRefreshToken(ctx, token, clientId, dpop);
  await markRefreshTokenSpent(ctx, row);
  return row;
}

/**
 * Runs every check of `spendRefreshToken` without spending the token, for a grant that has more
 * checks to run first. Presenting a spent token still revokes its family and delegation.
 */
export async function verifyPresentedRefreshToken(ctx: ServerContext, token: string, clientId: string, dpop?: DpopBinding): Promise<RefreshTokenTable> {
  const row = await ctx.db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', sha256Hex(token)).where('tenant_id', '=', ctx.tenantId).executeTakeFirst();
  if (row === undefined || row.client_id !== clientId) throw new InvalidGrant('The refresh token is invalid.', { detail: row === undefined ? 'unknown refresh token' : `refresh token of ${row.client_id} presented by ${clientId}` });
  if (row.revoked_at !== null) throw new InvalidGrant('The refresh token has been revoked.');
  // RFC 9449 §5: checked before the token is spent, so a thief without the key cannot burn it.
  requireBoundKey(row.dpop_jkt, dpop, 'refresh token');

  if (row.used_at !== null) {
    await revokeGrant(ctx, row);
    throw new InvalidGrant('The refresh token was already used; every token of its grant is now revoked.');
  }
  if (row.idle_expires_at <= nowSeconds()) throw new InvalidGrant('The refresh token has expired.');
  return row;
}

/** Marks a verified refresh token spent. Losing the race to a concurrent use counts as a reuse. */
export async function markRefreshTokenSpent(ctx: ServerContext, row: RefreshTokenTable): Promise<void> {
  const spent = await ctx.db.updateTable('refresh_tokens').set({ used_at: nowSeconds() }).where('id', '=', row.id).where('used_at', 'is', null).where('revoked_at', 'is', null).executeTakeFirst();
  if (Number(spent.numUpdatedRows) !== 1) {
    await revokeGrant(ctx, row);
    throw new InvalidGrant('The refresh token was already used; every token of its grant is now revoked.');
  }
}

/**
 * Revokes the family's refresh tokens and the delegation. Access tokens already issued from
 * the family carry the delegation's id, so the gateway rejects them on their next call instead
 * of letting them live until they expire.
 */
async function revokeGrant(ctx: ServerContext, row: RefreshTokenTable): Promise<void> {
  const now = nowSeconds();
  await ctx.db.transaction().execute(async (trx) => {
    await trx.updateTable('refresh_tokens').set({ revoked_at: now }).where('family_id', '=', row.family_id).where('revoked_at', 'is', null).execute();
    await trx.updateTable('delegations').set({ revoked_at: now, revoked_reason: 'refresh_token_reused' }).where('id', '=', row.delegation_id).where('revoked_at', 'is', null).execute();
    await ctx.audit(
      {
        event: 'refresh_token.reused',
        user: row.user_id,
        agent: row.client_id,
        target: { delegation_id: row.delegation_id, family_id: row.family_id },
        outcome: { decision: 'denied', revoked: ['refresh_token_family', 'delegation'] },
        reason: { rule: 'a spent refresh token was presented again; its family and delegation are revoked' },
      },
      trx,
    );
  });
}
