import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { SignedIn } from './session.ts';

/**
 * CSRF tokens of the forms that act under a signed-in session, derived from the `csrf_secret` of
 * that session (sessions table). The cookie-based tokens of @fastify/csrf-protection come from a
 * `_csrf` cookie that is set before sign-in, outlives sign-in and sign-out, and can be set by a
 * sibling host of the site. With them, a token from another session, or a cookie and token pair
 * planted by an attacker, would pass. A session token passes only for the session that the page
 * was rendered for, and only on the form it was made for. The sign-in form has no session yet and
 * keeps the cookie-based tokens, which never pass here.
 *
 * A token is `<salt>.<mac>`: a fresh random salt per page, so the token differs on every
 * response and a compression side channel (BREACH) cannot recover it, and the HMAC-SHA256 of the
 * form and salt under the session's secret.
 */

/** The forms that take a session CSRF token. The name is part of the MAC input, so a token passes only on its own form. */
export type SessionForm = 'approval decision' | 'CIBA decision' | 'consent' | 'sign-out' | 'delegation revocation';

const SALT_BYTES = 16;

/**
 * The CSRF token of a session form is missing, malformed, made for another form or not from the
 * signed-in session. The shared error handler responds 403 with the same message as for the
 * sign-in form.
 */
export class InvalidCsrfToken extends Error {
  readonly statusCode = 403;
  readonly code = 'MANDATE_INVALID_CSRF_TOKEN';

  constructor(form: SessionForm) {
    super(`The CSRF token of the ${form} form is missing or does not belong to the signed-in session.`);
  }
}

/** Creates a CSRF token of `form` for the signed-in session. */
export function createSessionCsrfToken(signedIn: Pick<SignedIn, 'csrfSecret'>, form: SessionForm): string {
  const salt = randomBytes(SALT_BYTES).toString('base64url');
  return `${salt}.${tokenMac(signedIn.csrfSecret, form, salt)}`;
}

/** Returns true when `token` was created for `form` and the session whose secret is `csrfSecret`. */
export function verifySessionCsrfToken(csrfSecret: string, form: SessionForm, token: unknown): boolean {
  if (typeof token !== 'string') return false;
  const [salt, mac, ...rest] = token.split('.');
  if (salt === undefined || mac === undefined || rest.length > 0 || salt === '') return false;

  const expected = Buffer.from(tokenMac(csrfSecret, form, salt));
  const actual = Buffer.from(mac);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * Throws InvalidCsrfToken unless the request's `_csrf` field is a token of `form` for the
 * signed-in session. Without a session no token is valid.
 */
export function requireSessionCsrfToken(request: FastifyRequest, signedIn: SignedIn | undefined, form: SessionForm): asserts signedIn is SignedIn {
  if (signedIn === undefined || !verifySessionCsrfToken(signedIn.csrfSecret, form, submittedCsrfToken(request))) throw new InvalidCsrfToken(form);
}

/** Reads the `_csrf` field of a form post, which every form of the pages carries (see CsrfField). */
function submittedCsrfToken(request: FastifyRequest): unknown {
  const body = request.body;
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)._csrf : undefined;
}

function tokenMac(csrfSecret: string, form: SessionForm, salt: string): string {
  return createHmac('sha256', csrfSecret).update(`mandate ${form}\0${salt}`).digest('base64url');
}
