import type { ServerContext } from '../context.ts';
import { notFound } from '../http/problem.ts';
import { auditedTransaction, type Trx } from '../admin/audited-transaction.ts';
import { nowSeconds } from '../store/ids.ts';

export interface RevocationOptions {
  /** Who initiated the revocation: `user:<id>`, `client:<client_id>` of an admin client, or `cli:<os user>`. */
  by: string;
  reason?: string | undefined;
}

export interface SingleRevocationOptions extends RevocationOptions {
  /** When set, only a delegation of this person may be revoked (a person revoking their own). */
  ownerUserId?: string | undefined;
}

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

type Selection = { kind: 'delegation'; id: string; ownerUserId?: string | undefined } | { kind: 'agent'; clientId: string } | { kind: 'user'; userId: string };

// Keeps each `IN (…)` list well below the bound-parameter limits of SQLite and PostgreSQL.
const ID_BATCH = 500;

/**
 * Revokes one delegation and its refresh tokens. Returns 1, or 0 when it was already revoked;
 * throws a 404 problem when it does not exist (or belongs to someone other than `ownerUserId`).
 */
export async function revokeDelegation(ctx: Ctx, id: string, options: SingleRevocationOptions): Promise<number> {
  const exists = await ctx.db
    .selectFrom('delegations')
    .select('id')
    .where('tenant_id', '=', ctx.tenantId)
    .where('id', '=', id)
    .$if(options.ownerUserId !== undefined, (query) => query.where('user_id', '=', options.ownerUserId ?? ''))
    .executeTakeFirst();
  if (exists === undefined) throw notFound(`Delegation ${id}`);

  return revoke(ctx, { kind: 'delegation', id, ownerUserId: options.ownerUserId }, options);
}

/** Revokes every active delegation of one agent, with their refresh tokens; returns how many. */
export async function revokeAgentDelegations(ctx: Ctx, clientId: string, options: RevocationOptions): Promise<number> {
  return revoke(ctx, { kind: 'agent', clientId }, options);
}

/** Revokes every active delegation of one person, with their refresh tokens; returns how many. */
export async function revokeUserDelegations(ctx: Ctx, userId: string, options: RevocationOptions): Promise<number> {
  return revoke(ctx, { kind: 'user', userId }, options);
}

/**
 * Sets `revoked_at` on the selected active delegations and on every refresh token hanging off
 * them, and appends one `delegation.revoked` audit event, all in one transaction.
 */
async function revoke(ctx: Ctx, selection: Selection, options: RevocationOptions): Promise<number> {
  return auditedTransaction(ctx, async (trx) => {
    const now = nowSeconds();
    const revoked = await markDelegationsRevoked(trx, ctx.tenantId, selection, now, options.reason ?? null);
    if (revoked.length === 0) return { result: 0, events: [] };

    const ids = revoked.map((delegation) => delegation.id);
    for (let start = 0; start < ids.length; start += ID_BATCH) {
      const batch = ids.slice(start, start + ID_BATCH);
      await trx.updateTable('refresh_tokens').set({ revoked_at: now }).where('delegation_id', 'in', batch).where('revoked_at', 'is', null).execute();
    }

    const users = [...new Set(revoked.map((delegation) => delegation.user_id))].sort();
    const agents = [...new Set(revoked.map((delegation) => delegation.client_id))].sort();
    const event = {
      event: 'delegation.revoked',
      actor: options.by,
      user: users.length === 1 ? users[0] : undefined,
      agent: agents.length === 1 ? agents[0] : undefined,
      target: { scope: selection.kind, delegations: ids, users, agents },
      outcome: { revoked: ids.length },
      reason: options.reason === undefined ? undefined : { reason: options.reason },
    };
    return { result: ids.length, events: [event] };
  });
}

async function markDelegationsRevoked(trx: Trx, tenantId: string, selection: Selection, now: number, reason: string | null) {
  let query = trx.updateTable('delegations').set({ revoked_at: now, revoked_reason: reason }).where('tenant_id', '=', tenantId).where('revoked_at', 'is', null);

  if (selection.kind === 'delegation') {
    query = query.where('id', '=', selection.id);
    if (selection.ownerUserId !== undefined) query = query.where('user_id', '=', selection.ownerUserId);
  }
  if (selection.kind === 'agent') query = query.where('client_id', '=', selection.clientId);
  if (selection.kind === 'user') query = query.where('user_id', '=', selection.userId);

  return query.returning(['id', 'user_id', 'client_id']).execute();
}
