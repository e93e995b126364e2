import type { ServerContext } from '../../context.ts';
import { nowSeconds } from '../../store/ids.ts';

/**
 * Records a proof's `jti` for its key until `expiresAt` and returns false when the pair was
 * recorded before, which means the proof is replayed (RFC 9449 §11.1). The primary key makes
 * the check atomic, so concurrent requests and other processes on the same database cannot
 * both use one proof.
 */
export async function rememberDpopProof(ctx: ServerContext, jkt: string, jti: string, expiresAt: number): Promise<boolean> {
  await ctx.db.deleteFrom('dpop_proofs').where('expires_at', '<', nowSeconds()).execute();

  try {
    await ctx.db.insertInto('dpop_proofs').values({ jkt, jti, expires_at: expiresAt }).execute();
    return true;
  } catch (error) {
    const seen = await ctx.db.selectFrom('dpop_proofs').select('jti').where('jkt', '=', jkt).where('jti', '=', jti).executeTakeFirst();
    if (seen !== undefined) return false;
    throw error;
  }
}
