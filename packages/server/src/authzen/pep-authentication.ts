import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { findClient, type Client } from '../agents/clients.ts';
import { verifyAccessToken, type AccessTokenClaims } from '../oauth/access-token.ts';
import { issueDpopNonce } from '../oauth/dpop/nonce.ts';
import { presentedToken, useDpopChallenge, verifyDpopResourceRequest } from '../oauth/dpop/resource-request.ts';
import { tokenTypeFor, type DpopBinding } from '../oauth/dpop/token-request.ts';
import { InsufficientScope, InvalidScope, InvalidTarget, InvalidToken, MissingToken, OAuthError, UnauthorizedClient } from '../oauth/errors.ts';
import { issueAuditedAccessToken, type TokenResponse } from '../oauth/token-response.ts';

/**
 * The scope a policy enforcement point (PEP) needs in its access token to call the Access
 * Evaluation API. Only admin clients and applications may obtain it (client_credentials at
 * `/token` with `resource=<issuer>/access`). Agents may not: they are the subjects of decisions.
 */
export const EVALUATION_SCOPE = 'mandate:evaluate';

/** Client kinds that may act as a PEP. */
const PEP_CLIENT_KINDS: readonly Client['kind'][] = ['admin', 'application'];

/** Returns the audience (RFC 8707 resource identifier) of the access tokens that PEPs present. */
export function evaluationAudience(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/access`;
}

/**
 * RFC 6749 §4.4: a PEP obtains its own token for the Access Evaluation API. The request must name
 * the evaluation audience as its only `resource`, and may ask only for EVALUATION_SCOPE.
 */
export async function evaluationAccessToken(ctx: ServerContext, client: Client, resources: string[], requested: string[] | undefined, dpop: DpopBinding | undefined): Promise<TokenResponse> {
  const audience = evaluationAudience(ctx.config.issuer);
  if (resources.length !== 1 || resources[0] !== audience) throw new InvalidTarget(`A token for ${audience} must name it as its only resource.`);
  if (!PEP_CLIENT_KINDS.includes(client.kind)) throw new UnauthorizedClient(`Only admin clients and applications may obtain tokens for ${audience}.`);
  if (requested !== undefined && requested.some((scope) => scope !== EVALUATION_SCOPE)) throw new InvalidScope(`Tokens for ${audience} carry only the ${EVALUATION_SCOPE} scope.`);

  const { token, expiresIn } = await issueAuditedAccessToken(ctx, {
    grantType: 'client_credentials',
    subject: client.client_id,
    clientId: client.client_id,
    audience,
    scope: [EVALUATION_SCOPE],
    lifetimeSeconds: ctx.config.accessTokenTtlSeconds,
    dpopJkt: dpop?.jkt,
    reasons: { client_kind: client.kind },
  });
  return { access_token: token, token_type: tokenTypeFor(dpop), expires_in: expiresIn, scope: EVALUATION_SCOPE };
}

/**
 * Authenticates the PEP that calls the Access Evaluation API. It admits only an access token
 * that Mandate issued to an active admin client or application for itself (client_credentials),
 * for the evaluation audience and with EVALUATION_SCOPE. A DPoP-bound token needs the `DPoP`
 * scheme and a proof for this request (RFC 9449 §7). Anything else is rejected with the RFC 6750
 * §3.1 error, so no evaluation runs for an unauthenticated caller.
 */
export async function authenticatePep(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, path: string): Promise<Client> {
  const presented = presentedToken(request.headers.authorization);
  if (presented === undefined) throw new MissingToken();

  try {
    const claims = await verifyAccessToken(ctx, presented.token, evaluationAudience(ctx.config.issuer));
    if (claims.tenant !== ctx.tenantId) throw new InvalidToken('The access token is invalid.', { detail: `token tenant ${String(claims.tenant)} is not ${ctx.tenantId}` });

    await verifyDpopResourceRequest(ctx, presented, claims, { proof: request.headers.dpop, method: request.method, url: `${ctx.config.issuer}${path}` });

    const client = await admittedClient(ctx, claims);
    if (presented.scheme === 'DPoP' && ctx.config.dpopNoncesRequired) void reply.header('dpop-nonce', issueDpopNonce(ctx));
    return client;
  } catch (error) {
    // RFC 9449 §7.1: a request that used the DPoP scheme gets a DPoP challenge.
    if (presented.scheme === 'DPoP' && error instanceof OAuthError) useDpopChallenge(error);
    throw error;
  }
}

async function admittedClient(ctx: ServerContext, claims: AccessTokenClaims): Promise<Client> {
  // Only the client's own client_credentials token: a token that names a person or an actor was
  // issued for someone else's request, even if an administrator named a resource `<issuer>/access`.
  if (claims.sub !== claims.client_id || claims.act !== undefined || claims.delegation_id !== undefined) {
    throw new InvalidToken('The access token must be the calling client\'s own client_credentials token.', { detail: `token ${claims.jti} names a person or an actor` });
  }

  // RFC 6750 §3.1: a valid token without the needed scope is insufficient_scope, 403.
  if (!claims.scope.split(' ').includes(EVALUATION_SCOPE)) throw new InsufficientScope(`The access token lacks the ${EVALUATION_SCOPE} scope.`, EVALUATION_SCOPE);

  // A token outlives a change to its client, so the client must still be an active admin client or application.
  const client = await findClient(ctx, claims.client_id);
  if (client === undefined || client.status !== 'active' || !PEP_CLIENT_KINDS.includes(client.kind)) {
    throw new InvalidToken('The access token belongs to a client that is disabled or may not call the Access Evaluation API.', { detail: `client ${claims.client_id} is not an active admin client or application` });
  }
  return client;
}
