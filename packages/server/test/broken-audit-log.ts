import { sql } from 'kysely';
import type { Db } from '../src/store/db.ts';
import { TEST_DB } from './harness.ts';

/**
 * Makes every append to the audit log fail until the returned function is called, with a trigger
 * that raises on insert. Renaming the table would do the same, but a relation that disappears
 * fails the migrations that other test files run at the same time on PostgreSQL, because
 * Kysely's migrator reads the tables of every schema.
 */
export async function breakAuditAppends(db: Db): Promise<() => Promise<void>> {
  if (TEST_DB === 'postgres') {
    await sql`CREATE FUNCTION reject_audit_append() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit appends are broken for this test'; END $$`.execute(db);
    await sql`CREATE TRIGGER reject_audit_append BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION reject_audit_append()`.execute(db);
    return async () => {
      await sql`DROP TRIGGER reject_audit_append ON audit_log`.execute(db);
      await sql`DROP FUNCTION reject_audit_append()`.execute(db);
    };
  }
  await sql`CREATE TRIGGER reject_audit_append BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit appends are broken for this test'); END`.execute(db);
  return async () => {
    await sql`DROP TRIGGER reject_audit_append`.execute(db);
  };
}
