import { createHash, randomBytes } from 'node:crypto';

/** Creates an identifier with a type prefix and 128 random bits, for example `usr_…`. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}

/** Creates a 256-bit random secret (codes, refresh tokens, client secrets, session ids). */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Hex SHA-256 of a string, used to store high-entropy secrets and to index them. */
export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
