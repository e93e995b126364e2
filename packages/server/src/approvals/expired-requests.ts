import type { Db } from '../store/db.ts';

/**
 * How long an approval or CIBA request is kept after it expires. Until then, an agent that reads
 * its status learns that it expired (or was used or denied) rather than that it does not exist.
 * After that it can grant nothing, so keeping it would only grow the table: an approval stores
 * the request body (up to 64 KiB, encrypted) for its page.
 */
export const EXPIRED_REQUEST_RETENTION_SECONDS = 24 * 3600;

/** Deletes the tenant's approvals that expired more than the retention ago. Each one is past use. */
export async function deleteExpiredApprovals(db: Db, tenantId: string, now: number): Promise<void> {
  await db.deleteFrom('approvals').where('tenant_id', '=', tenantId).where('expires_at', '<', now - EXPIRED_REQUEST_RETENTION_SECONDS).execute();
}

/**
 * Deletes the tenant's CIBA requests that expired more than the retention ago without a token.
 * An issued request stays, because its advance approval counts for calls under the token's
 * delegation after the request itself expired.
 */
export async function deleteExpiredCibaRequests(db: Db, tenantId: string, now: number): Promise<void> {
  await db
    .deleteFrom('ciba_requests')
    .where('tenant_id', '=', tenantId)
    .where('status', '!=', 'issued')
    .where('expires_at', '<', now - EXPIRED_REQUEST_RETENTION_SECONDS)
    .execute();
}
