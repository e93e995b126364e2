import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ServerContext } from '../context.ts';
import { formBody, singleParam } from '../http/form.ts';
import { renderLoginPage } from '../web/login-page.tsx';
import { authenticateUser } from './users.ts';
import { registerLogoutRoutes } from './logout.ts';
import { startSession } from './session.ts';

/**
 * Only local paths may follow a sign-in, so the form cannot be used as an open redirect. The
 * path goes into the Location header, so anything but visible ASCII (CR, LF, spaces, non-ASCII)
 * falls back to the default too: Node rejects such a header value.
 */
export function safeReturnPath(value: unknown): string {
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//') || value.includes('\\')) return '/account/delegations';
  if (!/^[\x21-\x7e]+$/.test(value)) return '/account/delegations';
  return value;
}

export function registerIdentityRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/login', async (request, reply) => {
    const returnTo = safeReturnPath((request.query as Record<string, unknown>).return_to);
    return sendHtml(reply, renderLoginPage({ returnTo, csrfToken: await reply.generateCsrf() }));
  });

  app.post('/login', { preHandler: app.csrfProtection, config: { rateLimit: { max: Math.min(ctx.config.rateLimitPerMinute, 60), timeWindow: '1 minute' } } }, async (request, reply) => {
    const form = formBody(request.body);
    const returnTo = safeReturnPath(singleParam(form, 'return_to'));
    const username = singleParam(form, 'username') ?? '';
    const password = singleParam(form, 'password') ?? '';

    const user = username === '' || password === '' ? undefined : await authenticateUser(ctx, username, password);
    if (user === undefined) {
      request.log.info({ event: 'sign_in.failed' }, 'sign-in failed');
      const page = renderLoginPage({ returnTo, csrfToken: await reply.generateCsrf(), error: 'The username or password is incorrect.', username });
      return sendHtml(reply.code(401), page);
    }

    await startSession(ctx, reply, user.id);
    request.log.info({ user: user.id, event: 'sign_in' }, 'person signed in');
    return reply.redirect(returnTo, 303);
  });

  registerLogoutRoutes(app, ctx);
}

export function sendHtml(reply: FastifyReply, html: string): FastifyReply {
  return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
}
