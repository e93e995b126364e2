import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ServerContext } from '../context.ts';
import { Problem } from '../http/problem.ts';
import { currentSession, signInUrl } from '../identity/session.ts';
import { createSessionCsrfToken, requireSessionCsrfToken } from '../identity/session-csrf.ts';
import { listDelegations } from './delegations.ts';
import { renderDelegationsPage } from './delegations-page.tsx';
import { revokeDelegation } from './revoke.ts';

const PAGE_PATH = '/account/delegations';

const NOTICES: Record<string, string> = {
  revoked: 'The delegation is revoked. The agent can no longer act for you with it.',
  'not-found': 'That delegation was not found among yours.',
  'already-revoked': 'That delegation was already revoked.',
};

/** Registers the "My delegations" page, which lists the signed-in person's active delegations and lets them revoke each. */
export function registerDelegationPages(app: FastifyInstance, ctx: ServerContext): void {
  app.get(PAGE_PATH, async (request, reply) => {
    const session = await currentSession(ctx, request);
    if (session === undefined) return reply.redirect(signInUrl(request), 303);

    const delegations = await listDelegations(ctx, { userId: session.user.id, active: true });
    const noticeKey = (request.query as Record<string, unknown>).notice;
    const page = renderDelegationsPage({
      displayName: session.user.display_name,
      delegations,
      csrfToken: createSessionCsrfToken(session, 'delegation revocation'),
      notice: typeof noticeKey === 'string' ? NOTICES[noticeKey] : undefined,
    });
    return sendPage(reply, page);
  });

  app.post<{ Params: { id: string } }>(`${PAGE_PATH}/:id/revoke`, async (request, reply) => {
    const session = await currentSession(ctx, request);
    // Signed out, the form can do nothing, so the person signs in and returns to the page.
    if (session === undefined) return reply.redirect(`/login?return_to=${encodeURIComponent(PAGE_PATH)}`, 303);
    requireSessionCsrfToken(request, session, 'delegation revocation');

    let notice: string;
    try {
      const revoked = await revokeDelegation(ctx, request.params.id, { by: `user:${session.user.id}`, reason: 'revoked by the person', ownerUserId: session.user.id });
      notice = revoked === 1 ? 'revoked' : 'already-revoked';
    } catch (error) {
      if (!(error instanceof Problem) || error.status !== 404) throw error;
      notice = 'not-found';
    }

    request.log.info({ user: session.user.id, delegation: request.params.id, outcome: notice }, 'person revoked a delegation');
    return reply.redirect(`${PAGE_PATH}?notice=${notice}`, 303);
  });
}

function sendPage(reply: FastifyReply, html: string): FastifyReply {
  return reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html);
}
