import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ServerContext } from '../../context.ts';
import { nowSeconds } from '../../store/ids.ts';

/** How long a server-issued DPoP nonce stays valid. */
export const DPOP_NONCE_LIFETIME_SECONDS = 300;

const NONCE_FORMAT = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

const nonceKeys = new WeakMap<ServerContext['envelope'], Uint8Array>();

/**
 * Issues a DPoP nonce (RFC 9449 §8): the issue time and an HMAC-SHA-256 over it, with a key
 * derived from the master key. Any process that shares the master key accepts it, so the
 * server keeps no nonce state.
 */
export function issueDpopNonce(ctx: Pick<ServerContext, 'envelope'>): string {
  const issuedAt = String(nowSeconds());
  return `${issuedAt}.${nonceMac(ctx, issuedAt).toString('base64url')}`;
}

/** Returns true when this server issued the nonce and it has not expired. */
export function isValidDpopNonce(ctx: Pick<ServerContext, 'envelope'>, nonce: string): boolean {
  const match = NONCE_FORMAT.exec(nonce);
  if (match?.[1] === undefined || match[2] === undefined) return false;

  const expected = nonceMac(ctx, match[1]);
  const presented = Buffer.from(match[2], 'base64url');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return false;

  const age = nowSeconds() - Number(match[1]);
  return age >= 0 && age <= DPOP_NONCE_LIFETIME_SECONDS;
}

function nonceMac(ctx: Pick<ServerContext, 'envelope'>, issuedAt: string): Buffer {
  let key = nonceKeys.get(ctx.envelope);
  if (key === undefined) {
    key = ctx.envelope.deriveKey('dpop nonce');
    nonceKeys.set(ctx.envelope, key);
  }
  return createHmac('sha256', key).update(`dpop-nonce.${issuedAt}`).digest();
}
