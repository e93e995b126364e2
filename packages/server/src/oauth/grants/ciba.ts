import type { ServerContext } from '../../context.ts';
import type { Client } from '../../agents/clients.ts';
import { findUser } from '../../identity/users.ts';
import { findResourceById } from '../../resources/registry.ts';
import { nowSeconds, sha256Hex } from '../../store/ids.ts';
import { requiredParam, type FormBody } from '../../http/form.ts';
import { findLiveDelegation } from '../delegation.ts';
import { InvalidGrant, InvalidScope, UnauthorizedClient } from '../errors.ts';
import { issueIdToken } from '../id-token.ts';
import { grantReasons, grantScope } from '../scope.ts';
import { issueAuditedAccessToken, type TokenResponse } from '../token-response.ts';
import { tokenTypeFor, type DpopBinding } from '../dpop/token-request.ts';
import { AuthorizationPending, ExpiredToken, SlowDown, TokenAccessDenied } from '../ciba/errors.ts';
import { findCibaRequestByAuthReqId, markIssued, recordPoll, requestedActions, storedDetails, type CibaRequest } from '../ciba/requests.ts';
import type { MandateActionDetail } from '../ciba/authorization-details.ts';

/** CIBA Core 1.0 §10.1: the grant type of the token request. */
export const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';

/** CIBA Core 1.0 §10.1.1 with RFC 9396 §7: the approved details come back with the token. */
export interface CibaTokenResponse extends TokenResponse {
  authorization_details?: MandateActionDetail[];
}

/**
 * CIBA Core 1.0 §10 and §11: the agent redeems an `auth_req_id`. Until the person decides, it
 * gets `authorization_pending`, or `slow_down` when it polls sooner than the interval. Afterwards
 * it gets `access_denied` or `expired_token`, or, once, the access token and an ID token. An
 * unknown, foreign or spent `auth_req_id` is `invalid_grant`.
 *
 * The access token acts for the person (`sub`) with the agent as actor (`act`), names the
 * delegation recorded at the approval, is for the detail's resource, and carries the
 * `authorization_details` exactly as approved (RFC 9396 §9.1). No refresh token is issued: an
 * advance approval covers one token, and the agent sends a new request after it expires.
 */
export async function cibaGrant(ctx: ServerContext, client: Client, form: FormBody, dpop?: DpopBinding): Promise<CibaTokenResponse> {
  if (client.kind !== 'agent') throw new UnauthorizedClient('Only agents may use the CIBA grant.');
  const authReqId = requiredParam(form, 'auth_req_id');

  const request = await findCibaRequestByAuthReqId(ctx, authReqId);
  // CIBA Core 1.0 §11: an auth_req_id issued to another client is invalid_grant, like an unknown one.
  if (request === undefined || request.client_id !== client.client_id) throw new InvalidGrant('The auth_req_id is invalid.', { detail: request === undefined ? 'unknown auth_req_id' : `auth_req_id of ${request.id} belongs to ${request.client_id}` });

  await checkDecision(ctx, request);
  // Spent before the tokens are issued, so that no failure after this point leaves it redeemable twice.
  if (!(await markIssued(ctx, request.id))) {
    // Another token request redeemed it, or it expired, between the read and the update.
    throw new InvalidGrant('The auth_req_id was already used.', { detail: `${request.id} was redeemed concurrently or expired` });
  }
  return issueTokens(ctx, client, request, dpop);
}

/**
 * Throws the CIBA error for every request that cannot be redeemed now, and returns for an
 * approved, unexpired one whose grant is still valid. The pending state records the poll for
 * `slow_down`. A denial is reported even after expiry, because it is the person's decision.
 */
async function checkDecision(ctx: ServerContext, request: CibaRequest): Promise<void> {
  const now = nowSeconds();
  if (request.status === 'issued') throw new InvalidGrant('The auth_req_id was already used; each one is redeemed once.');
  if (request.status === 'denied') throw new TokenAccessDenied('The person denied the request.');
  if (request.expires_at <= now) throw new ExpiredToken('The auth_req_id has expired; send a new backchannel authentication request.');

  if (request.status === 'pending') {
    const poll = await recordPoll(ctx, request, Date.now());
    if (!poll.inTime) throw new SlowDown(`Token requests came faster than the interval; wait at least ${poll.intervalSeconds} seconds between them.`);
    throw new AuthorizationPending('The person has not decided yet; ask again after the interval.');
  }
}

/**
 * Issues the access token and the ID token for an approved request, after checking again what
 * may have changed since the approval: the delegation, the person and the roles. An action the
 * roles no longer grant is dropped, and a token without the approved detail's action is not
 * issued at all.
 */
async function issueTokens(ctx: ServerContext, client: Client, request: CibaRequest, dpop: DpopBinding | undefined): Promise<CibaTokenResponse> {
  const delegation = request.delegation_id === null ? undefined : await findLiveDelegation(ctx, request.delegation_id);
  const user = await findUser(ctx, request.user_id);
  const resource = await findResourceById(ctx, request.resource_id);
  if (delegation === undefined || user === undefined || user.status !== 'active' || resource === undefined) throw new InvalidGrant('The approval was revoked.');

  const details = storedDetails(request);
  const detailAction = details?.[0]?.action;
  let granted;
  try {
    granted = await grantScope(ctx, { userId: user.id, agentId: client.client_id }, resource, requestedActions(request), new Set(delegation.scope.split(' ')));
  } catch (error) {
    if (error instanceof InvalidScope) throw new InvalidGrant('The roles of the agent or the person no longer grant what the person approved.', { detail: error.message, cause: error });
    throw error;
  }
  if (detailAction !== undefined && !granted.scope.includes(detailAction)) throw new InvalidGrant('The roles of the agent or the person no longer grant the approved action.');

  const oidcScope = request.scope.split(' ').filter((scope) => ['openid', 'profile', 'email'].includes(scope));
  const tokenScope = [...oidcScope, ...granted.scope];
  const { token, expiresIn } = await issueAuditedAccessToken(ctx, {
    grantType: CIBA_GRANT,
    subject: user.id,
    userId: user.id,
    clientId: client.client_id,
    actor: client.client_id,
    audience: resource.identifier,
    scope: tokenScope,
    lifetimeSeconds: resource.access_token_ttl_seconds,
    delegationId: delegation.id,
    dpopJkt: dpop?.jkt,
    authorizationDetails: details,
    reasons: {
      ...grantReasons(granted.decisions),
      ciba_request_id: request.id,
      ...(request.authorization_details === null ? {} : { authorization_details_sha256: sha256Hex(request.authorization_details) }),
    },
  });

  const response: CibaTokenResponse = { access_token: token, token_type: tokenTypeFor(dpop), expires_in: expiresIn, scope: tokenScope.join(' ') };
  if (details !== undefined) response.authorization_details = details;
  // CIBA Core 1.0 §10.1.1: an OpenID Connect request returns an ID token for the person who approved.
  if (oidcScope.includes('openid')) response.id_token = await issueIdToken(ctx, { user, clientId: client.client_id, nonce: null, authTime: Number(request.auth_time ?? request.decided_at ?? nowSeconds()) });
  return response;
}
