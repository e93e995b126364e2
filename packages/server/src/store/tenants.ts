import type { Db } from './db.ts';
import { nowSeconds } from './ids.ts';

/** Creates the tenant row on first start; concurrent starts are harmless. */
export async function ensureTenant(db: Db, id: string): Promise<void> {
  await db.insertInto('tenants').values({ id, name: id, created_at: nowSeconds() }).onConflict((oc) => oc.column('id').doNothing()).execute();
}
