import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.ts';
import type { Client } from '../../agents/clients.ts';
import { formBody } from '../../http/form.ts';
import { sha256Hex } from '../../store/ids.ts';
import { authenticateClient } from '../client-authentication.ts';
import { UnauthorizedClient } from '../errors.ts';
import { checkClientMayUseGrant } from '../token-endpoint.ts';
import { CIBA_GRANT } from '../grants/ciba.ts';
import { validateBackchannelRequest } from './backchannel-request.ts';
import { createCibaRequest } from './requests.ts';

/** Path of the backchannel authentication endpoint (CIBA Core 1.0 §7). */
export const BACKCHANNEL_AUTHENTICATION_PATH = '/bc-authorize';

/** CIBA Core 1.0 §7.3: the successful response. */
export interface BackchannelAuthenticationResponse {
  auth_req_id: string;
  expires_in: number;
  interval: number;
}

/**
 * CIBA Core 1.0 §7: an agent requests a person's approval without a browser. The agent
 * authenticates as at the token endpoint (§7.1). Only confidential agents that an administrator
 * created may send requests, because the token endpoint keeps self-registered and public clients
 * to the code flow. The person sees the request in their approvals inbox.
 */
export function registerBackchannelAuthenticationEndpoint(app: FastifyInstance, ctx: ServerContext): void {
  app.post(BACKCHANNEL_AUTHENTICATION_PATH, { config: { rateLimit: { max: ctx.config.rateLimitPerMinute, timeWindow: '1 minute' } } }, async (request, reply) => {
    const form = formBody(request.body);
    const client = await authenticateClient(ctx, request, form);
    checkBackchannelClient(client);
    request.log = request.log.child({ agent: client.client_id });

    const validated = await validateBackchannelRequest(ctx, client, form);
    const { authReqId, request: stored } = await createCibaRequest(ctx, { ...validated, clientId: client.client_id, userId: validated.user.id, resourceId: validated.resource.id, intervalSeconds: ctx.config.cibaPollIntervalSeconds }, async (created, trx) => {
      await ctx.audit(
        {
          event: 'ciba.requested',
          user: created.user_id,
          agent: created.client_id,
          target: { ciba_request_id: created.id, resource: validated.resource.identifier, scope: created.scope, delivery_mode: created.delivery_mode },
          outcome: { status: 'pending', expires_at: created.expires_at },
          reason: {
            ...validated.reasons,
            binding_message: created.binding_message,
            ...(created.authorization_details === null ? {} : { authorization_details_sha256: sha256Hex(created.authorization_details) }),
          },
          request_id: request.id,
        },
        trx,
      );
    });

    request.log.info({ ciba_request: stored.id, user: stored.user_id, delivery_mode: stored.delivery_mode }, 'backchannel authentication request created');
    const response: BackchannelAuthenticationResponse = { auth_req_id: authReqId, expires_in: validated.expiresIn, interval: stored.interval_seconds };
    return reply.headers({ 'cache-control': 'no-store', pragma: 'no-cache' }).send(response);
  });
}

/**
 * Only agents act for people here. The token endpoint's own rule decides the rest, so that an
 * agent is never given an `auth_req_id` it could not redeem.
 */
function checkBackchannelClient(client: Client): void {
  if (client.kind !== 'agent') throw new UnauthorizedClient('Only agents may send backchannel authentication requests.');
  checkClientMayUseGrant(client, CIBA_GRANT);
}
