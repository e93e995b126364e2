import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { CallerRejected, checkDelegation, presentedToken, useDpopChallenge, verifyDelegatedToken, verifySenderConstraint } from '../gateway/authenticate.ts';
import { MissingToken, OAuthError } from '../oauth/errors.ts';
import { findResourceById } from '../resources/registry.ts';
import { nowSeconds } from '../store/ids.ts';
import { approvalStatus, findApproval, type ApprovalStatus } from './service.ts';

const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{1,64}$/;

/** The JSON body of `GET /approvals/{id}/status`. */
export interface ApprovalStatusResponse {
  approval_id: string;
  status: ApprovalStatus;
  /** Seconds until the approval expires; 0 once it has. */
  expires_in: number;
}

/**
 * Registers `GET /approvals/{id}/status`, which an agent polls with the access token of the call
 * that needs the approval, instead of sending the call again. It acts as a resource server for
 * the approval's resource: the token must have that audience, be delegated by the same person
 * to the same agent under the same delegation, and pass the gateway's DPoP check. Any other
 * caller gets 404, so approval ids cannot be probed with another delegation's token.
 */
export function registerApprovalStatusRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string } }>('/approvals/:id/status', async (request, reply) => {
    const body = await readApprovalStatus(ctx, request);
    return reply.header('cache-control', 'no-store').send(body);
  });
}

async function readApprovalStatus(ctx: ServerContext, request: FastifyRequest<{ Params: { id: string } }>): Promise<ApprovalStatusResponse> {
  const authorization = request.headers.authorization;
  const presented = presentedToken(Array.isArray(authorization) ? undefined : authorization);
  // RFC 6750 §3: a request without a token gets a challenge without an error code.
  if (presented === undefined) throw new MissingToken();

  const notFound = new OAuthError('invalid_request', 404, 'No approval with this id exists for this access token.');
  const id = request.params.id;
  const approval = APPROVAL_ID.test(id) ? await findApproval(ctx, id) : undefined;
  const resource = approval === undefined ? undefined : await findResourceById(ctx, approval.resource_id);
  if (approval === undefined || resource === undefined) throw notFound;

  try {
    const claims = await verifyDelegatedToken(ctx, presented.token, resource.identifier);
    // RFC 9449 §7.1: a DPoP-bound token needs the DPoP scheme and a proof for this request.
    await verifySenderConstraint(ctx, presented, claims, { proof: request.headers.dpop, method: 'GET', url: `${ctx.config.issuer}/approvals/${id}/status` });
    await checkDelegation(ctx, claims, approval.resource_id);

    if (claims.delegation_id !== approval.delegation_id || claims.act.sub !== approval.client_id || claims.sub !== approval.user_id) throw notFound;
  } catch (error) {
    const rejection = error instanceof CallerRejected ? error.denial : error;
    if (rejection instanceof OAuthError && presented.scheme === 'DPoP') useDpopChallenge(rejection);
    throw rejection;
  }

  const now = nowSeconds();
  return { approval_id: approval.id, status: approvalStatus(approval, now), expires_in: Math.max(0, Number(approval.expires_at) - now) };
}
