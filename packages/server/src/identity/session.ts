import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import type { Db } from '../store/db.ts';
import { newSecret, nowSeconds, sha256Hex } from '../store/ids.ts';
import { findUser, type User } from './users.ts';

export const SESSION_COOKIE = 'mandate_session';

export interface SignedIn {
  user: User;
  /** Unix time of the sign-in, for `auth_time` and for actions that need a recent sign-in. */
  authTime: number;
  /** Key of the session's CSRF tokens (session-csrf.ts). It must never be logged or sent. */
  csrfSecret: string;
}

/** Starts a session after a successful sign-in; only the hash of the session id is stored. */
export async function startSession(ctx: ServerContext, reply: FastifyReply, userId: string): Promise<void> {
  const sessionId = newSecret();
  const now = nowSeconds();
  await ctx.db
    .insertInto('sessions')
    .values({ id_hash: sha256Hex(sessionId), tenant_id: ctx.tenantId, user_id: userId, csrf_secret: newSecret(), auth_time: now, expires_at: now + ctx.config.sessionTtlSeconds })
    .execute();
  reply.setCookie(SESSION_COOKIE, sessionId, {
    httpOnly: true,
    sameSite: 'lax',
    path: '/',
    secure: ctx.config.issuer.startsWith('https:'),
    maxAge: ctx.config.sessionTtlSeconds,
  });
}

/**
 * Returns the signed-in person with the session's CSRF secret, or undefined when there is no live
 * session of this tenant for an active user.
 */
export async function currentSession(ctx: ServerContext, request: FastifyRequest): Promise<SignedIn | undefined> {
  const sessionId = request.cookies[SESSION_COOKIE];
  if (sessionId === undefined || sessionId === '') return undefined;

  const session = await ctx.db.selectFrom('sessions').selectAll().where('tenant_id', '=', ctx.tenantId).where('id_hash', '=', sha256Hex(sessionId)).executeTakeFirst();
  if (session === undefined || Number(session.expires_at) <= nowSeconds()) return undefined;

  const user = await findUser(ctx, session.user_id);
  if (user === undefined || user.status !== 'active') return undefined;
  return { user, authTime: Number(session.auth_time), csrfSecret: session.csrf_secret };
}

/**
 * Ends the session in the database and then in the browser. `record` runs in the same transaction,
 * so an audit entry commits with the end; when either fails, the session and its cookie stay.
 */
export async function endSession(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, record?: (trx: Db) => Promise<void>): Promise<void> {
  const sessionId = request.cookies[SESSION_COOKIE];
  await ctx.db.transaction().execute(async (trx) => {
    if (sessionId !== undefined) await trx.deleteFrom('sessions').where('id_hash', '=', sha256Hex(sessionId)).execute();
    if (record !== undefined) await record(trx);
  });
  reply.clearCookie(SESSION_COOKIE, { path: '/' });
}

/** The sign-in URL that returns to the current page afterwards. */
export function signInUrl(request: FastifyRequest): string {
  return `/login?return_to=${encodeURIComponent(request.url)}`;
}
