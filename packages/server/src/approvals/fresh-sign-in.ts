import type { ServerContext } from '../context.ts';
import { nowSeconds } from '../store/ids.ts';

/**
 * Returns true when approving must first ask the person to sign in again: their sign-in is older
 * than `approvalMaxAuthAgeSeconds`. Denying needs no fresh sign-in, because it grants nothing.
 */
export function needsFreshSignIn(ctx: Pick<ServerContext, 'config'>, authTime: number): boolean {
  return nowSeconds() - authTime > ctx.config.approvalMaxAuthAgeSeconds;
}
