import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const MASTER_KEY_FILE = 'master.key';

export interface MasterKey {
  key: Uint8Array;
  /** `environment` when MANDATE_MASTER_KEY set it; `file` when read from or generated into the key file. */
  source: 'environment' | 'file';
}

/**
 * Returns the 256-bit master key that wraps every data key and private signing key. Without an
 * explicit key it reads, or on first start creates, `<dataDir>/master.key` with mode 0600.
 */
export function loadMasterKey(explicit: string | undefined, dataDir: string): MasterKey {
  if (explicit !== undefined) return { key: decodeKey(explicit, 'MANDATE_MASTER_KEY'), source: 'environment' };

  const path = join(dataDir, MASTER_KEY_FILE);
  if (!existsSync(path)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  }

  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(`The master key file ${path} is readable by other users (mode ${mode.toString(8)}): run chmod 600 on it.`);
  }
  return { key: decodeKey(readFileSync(path, 'utf8').trim(), path), source: 'file' };
}

/** Creates a new master key in the form MANDATE_MASTER_KEY expects. */
export function generateMasterKey(): string {
  return randomBytes(32).toString('base64url');
}

function decodeKey(encoded: string, origin: string): Uint8Array {
  const key = Buffer.from(encoded, 'base64url');
  if (key.length !== 32 || key.toString('base64url') !== encoded) {
    throw new Error(`The master key from ${origin} must be 32 bytes encoded as base64url.`);
  }
  return new Uint8Array(key);
}
