import { conflict } from '../http/problem.ts';

/**
 * True for a unique or primary key violation: SQLite (better-sqlite3 error codes) or PostgreSQL
 * (SQLSTATE 23505, unique_violation).
 */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;

  const code = (error as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Runs `work` and turns a unique violation into a 409 problem with `detail`. */
export async function rejectDuplicates<T>(detail: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict(detail);
    throw error;
  }
}
