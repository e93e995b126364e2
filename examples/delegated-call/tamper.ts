import { sql } from 'kysely';
import type { ServerContext } from '../../packages/server/src/context.ts';

/**
 * Plays an attacker with write access to the database: first tries a plain UPDATE (the
 * trigger refuses it), then disables the trigger and rewrites one entry's outcome.
 */
export async function tamperWithAuditEntry(ctx: ServerContext, seq: number): Promise<{ updateRefused: boolean }> {
  let updateRefused = false;
  try {
    await sql`UPDATE audit_log SET entry = replace(entry, 'allowed', 'denied') WHERE seq = ${seq}`.execute(ctx.db);
  } catch {
    updateRefused = true;
  }

  if (ctx.store.dialect === 'sqlite') {
    await sql`DROP TRIGGER audit_log_no_update`.execute(ctx.db);
    await sql`UPDATE audit_log SET entry = replace(entry, '"created_at"', '"created_at" ') WHERE seq = ${seq}`.execute(ctx.db);
  } else {
    // ALTER TABLE waits for every open transaction on the table; a bounded wait turns a stuck
    // transaction into an error instead of a hang.
    await ctx.db.transaction().execute(async (trx) => {
      await sql`SET LOCAL lock_timeout = '10s'`.execute(trx);
      await sql`ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update`.execute(trx);
      await sql`UPDATE audit_log SET entry = replace(entry, '"created_at"', '"created_at" ') WHERE seq = ${seq}`.execute(trx);
      await sql`ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update`.execute(trx);
    });
  }
  return { updateRefused };
}
