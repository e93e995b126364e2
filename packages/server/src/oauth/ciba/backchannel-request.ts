import type { ServerContext } from '../../context.ts';
import type { Client } from '../../agents/clients.ts';
import { verifyIdTokenHint } from '../../identity/id-token-hint.ts';
import { findUser, findUserByUsername, type User } from '../../identity/users.ts';
import { repeatedParam, singleParam, type FormBody } from '../../http/form.ts';
import { decideCall, type AuditedDecision } from '../../policy/decision-point.ts';
import type { ResourceAction, ResourceWithActions } from '../../resources/registry.ts';
import { findResourceByIdentifier } from '../../resources/registry.ts';
import { AccessDenied, InvalidRequest, InvalidScope, InvalidTarget, UnauthorizedClient } from '../errors.ts';
import { resolveResource } from '../resource-indicator.ts';
import { grantReasons, grantScope, OIDC_SCOPES, parseScope } from '../scope.ts';
import { actionMismatch } from '../../gateway/action-match.ts';
import type { UpstreamPath } from '../../gateway/path.ts';
import { detailTarget, parseAuthorizationDetails, type MandateActionDetail } from './authorization-details.ts';
import { InvalidAuthorizationDetails, InvalidBindingMessage, UnknownUserId } from './errors.ts';

/** Longest `binding_message` shown to the person, in Unicode code points. */
export const MAX_BINDING_MESSAGE_LENGTH = 100;

/** CIBA Core 1.0 §7.1: a `client_notification_token` is at most 1024 characters. */
export const MAX_CLIENT_NOTIFICATION_TOKEN_LENGTH = 1024;

/** OpenID Connect scopes that a CIBA token keeps. `offline_access` is dropped: this grant issues no refresh token. */
const KEPT_OIDC_SCOPES = ['openid', 'profile', 'email'];

/** RFC 6750 §2.1 `b64token`, the syntax CIBA Core 1.0 §7.1 requires of `client_notification_token`. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Control, format, private-use and unassigned characters, and line and paragraph separators. A
 * binding message with any of them could look different on the two screens it must match on,
 * for example through a right-to-left override.
 */
const UNREADABLE_CHARACTER = /[\p{C}\p{Zl}\p{Zp}]/u;

const REQUESTED_EXPIRY = /^[0-9]{1,9}$/;

/** A backchannel authentication request that passed every check of CIBA Core 1.0 §7.1 and §7.2. */
export interface ValidatedBackchannelRequest {
  client: Client;
  user: User;
  resource: ResourceWithActions;
  /** The scope to issue: the kept OpenID Connect scopes, the granted actions and the detail's action. */
  scope: string[];
  authorizationDetails: MandateActionDetail[] | undefined;
  bindingMessage: string | undefined;
  /** Lifetime of the request in seconds: `requested_expiry` within the configured bounds. */
  expiresIn: number;
  deliveryMode: 'poll' | 'ping';
  clientNotificationToken: string | undefined;
  /** Why the parties may do this, for the audit entry: the roles that grant the actions and the policy decision. */
  reasons: Record<string, unknown>;
}

/**
 * Validates a backchannel authentication request (CIBA Core 1.0 §7.1, §7.2) of an authenticated
 * agent: the syntax of every parameter first, then the person, then what the agent requests. The
 * request names the action in an RFC 9396 `mandate_action` authorization detail, or as action
 * values in `scope` with an RFC 8707 `resource`, or both for the same resource. Each action must
 * be granted by a role of the agent and by a role of the person, and the policy must not forbid it.
 */
export async function validateBackchannelRequest(ctx: ServerContext, client: Client, form: FormBody): Promise<ValidatedBackchannelRequest> {
  rejectUnsupportedParameters(form);
  const scope = requireOpenidScope(singleParam(form, 'scope'));
  const bindingMessage = readBindingMessage(singleParam(form, 'binding_message'));
  const expiresIn = readRequestedExpiry(ctx, singleParam(form, 'requested_expiry'));
  const delivery = readDelivery(ctx, client, singleParam(form, 'client_notification_token'));
  const detailsText = singleParam(form, 'authorization_details');
  const details = detailsText === undefined ? undefined : parseAuthorizationDetails(detailsText);

  const user = await identifyPerson(ctx, client, form);

  const actions = scope.filter((value) => !OIDC_SCOPES.has(value));
  if (details === undefined && actions.length === 0) {
    throw new InvalidScope('The request names no action: put an action of the resource in scope (with the resource parameter), or a mandate_action in authorization_details.');
  }
  const resource = await resolveTarget(ctx, repeatedParam(form, 'resource'), details);

  const detail = details?.[0];
  const detailDecision = detail === undefined ? undefined : await decideDetail(ctx, client, user, resource, detail);
  const granted = actions.length === 0 ? undefined : await grantScope(ctx, { userId: user.id, agentId: client.client_id }, resource, actions);

  const grantedActions = [...new Set([...(granted?.scope ?? []), ...(detail === undefined ? [] : [detail.action])])];
  return {
    client,
    user,
    resource,
    scope: [...KEPT_OIDC_SCOPES.filter((value) => scope.includes(value)), ...grantedActions],
    authorizationDetails: details,
    bindingMessage,
    expiresIn,
    deliveryMode: delivery.mode,
    clientNotificationToken: delivery.notificationToken,
    reasons: {
      ...(granted === undefined ? {} : grantReasons(granted.decisions)),
      ...(detailDecision === undefined ? {} : { policy_decision: detailDecision.audit }),
    },
  };
}

/**
 * Signed requests (CIBA Core 1.0 §7.1.1) and user codes (§7.1) are not supported, and the server
 * metadata declares this. Rejecting them, rather than ignoring them, keeps a client from assuming
 * a protection that Mandate does not give.
 */
function rejectUnsupportedParameters(form: FormBody): void {
  if (form.request !== undefined) throw new InvalidRequest('Signed authentication requests (the request parameter) are not supported; send the parameters in the form body.');
  if (form.user_code !== undefined) throw new InvalidRequest('user_code is not supported by this server (backchannel_user_code_parameter_supported is false).');
}

/** CIBA Core 1.0 §7.1: `scope` is required and must contain `openid`. */
function requireOpenidScope(value: string | undefined): string[] {
  const scope = parseScope(value);
  if (scope === undefined) throw new InvalidRequest('The scope parameter is missing; a CIBA request needs at least scope=openid.');
  if (!scope.includes('openid')) throw new InvalidScope('The scope must contain openid (CIBA Core 1.0 §7.1).');
  return scope;
}

/** CIBA Core 1.0 §7.1: a short, plain-text message that the person compares with the one the agent shows. */
function readBindingMessage(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if ([...value].length > MAX_BINDING_MESSAGE_LENGTH) throw new InvalidBindingMessage(`binding_message is longer than ${MAX_BINDING_MESSAGE_LENGTH} characters; send a short code or phrase.`);
  if (UNREADABLE_CHARACTER.test(value)) throw new InvalidBindingMessage('binding_message contains control or formatting characters; send plain printable text.');
  return value;
}

/** CIBA Core 1.0 §7.1: `requested_expiry` is a positive integer; the server shortens it to `cibaMaxExpirySeconds`. */
function readRequestedExpiry(ctx: ServerContext, value: string | undefined): number {
  if (value === undefined) return ctx.config.cibaDefaultExpirySeconds;
  if (!REQUESTED_EXPIRY.test(value) || Number(value) === 0) throw new InvalidRequest('requested_expiry must be a positive integer number of seconds.');
  return Math.min(Number(value), ctx.config.cibaMaxExpirySeconds);
}

/**
 * Reads the agent's registered delivery mode. In ping mode the request must carry the bearer
 * token that authenticates Mandate's notification (CIBA Core 1.0 §7.1), and the registered
 * endpoint must still be allowed: http only on loopback with `allowLoopbackUpstreams`. In poll
 * mode a `client_notification_token` is ignored.
 */
function readDelivery(ctx: ServerContext, client: Client, token: string | undefined): { mode: 'poll' | 'ping'; notificationToken: string | undefined } {
  if (client.backchannel_token_delivery_mode !== 'ping') return { mode: 'poll', notificationToken: undefined };

  if (token === undefined) throw new InvalidRequest('client_notification_token is missing; an agent registered for ping mode must send one (CIBA Core 1.0 §7.1).');
  if (token.length > MAX_CLIENT_NOTIFICATION_TOKEN_LENGTH || !B64TOKEN.test(token)) {
    throw new InvalidRequest(`client_notification_token must be an RFC 6750 bearer token of at most ${MAX_CLIENT_NOTIFICATION_TOKEN_LENGTH} characters.`);
  }

  const endpoint = client.backchannel_client_notification_endpoint;
  if (endpoint === null || endpoint === undefined) throw new UnauthorizedClient('The agent is registered for ping mode without a backchannel_client_notification_endpoint; an administrator must register one.');
  if (new URL(endpoint).protocol !== 'https:' && !ctx.config.allowLoopbackUpstreams) {
    throw new UnauthorizedClient('The agent\'s notification endpoint uses http, which this server accepts only on loopback in test mode; an administrator must register an https endpoint.');
  }
  return { mode: 'ping', notificationToken: token };
}

/**
 * CIBA Core 1.0 §7.1: exactly one hint names the person. `login_hint` is the username and
 * `id_token_hint` an ID token that Mandate issued to this agent. `login_hint_token` has no format
 * that Mandate defines, so it is rejected. A hint that names no active person is `unknown_user_id`.
 */
async function identifyPerson(ctx: ServerContext, client: Client, form: FormBody): Promise<User> {
  const loginHint = singleParam(form, 'login_hint');
  const loginHintToken = singleParam(form, 'login_hint_token');
  const idTokenHint = singleParam(form, 'id_token_hint');
  const hints = [loginHint, loginHintToken, idTokenHint].filter((hint) => hint !== undefined);
  if (hints.length !== 1) throw new InvalidRequest('Send exactly one of login_hint, login_hint_token and id_token_hint (CIBA Core 1.0 §7.1).');
  if (loginHintToken !== undefined) throw new InvalidRequest('login_hint_token is not supported; send login_hint with the person\'s username, or id_token_hint.');

  let user: User | undefined;
  if (idTokenHint !== undefined) {
    const hint = await verifyIdTokenHint(ctx, idTokenHint);
    if (hint.clientId !== client.client_id) throw new InvalidRequest('The id_token_hint was issued to another client.', { detail: `id_token_hint audience ${hint.clientId}` });
    user = await findUser(ctx, hint.userId);
  } else if (loginHint !== undefined && loginHint.length <= 200) {
    user = await findUserByUsername(ctx, loginHint);
  }

  if (user === undefined || user.status !== 'active') throw new UnknownUserId('The login hint does not name an active person of this server.');
  return user;
}

/**
 * Resolves the one resource of the request. An authorization detail names it; a `resource`
 * parameter sent as well must name the same one (RFC 8707 §2). Without a detail, `resource` is
 * required, as in every other grant of this server.
 */
async function resolveTarget(ctx: ServerContext, resources: string[], details: MandateActionDetail[] | undefined): Promise<ResourceWithActions> {
  const detail = details?.[0];
  if (detail === undefined) return resolveResource(ctx, resources);

  if (resources.some((value) => value !== detail.resource)) throw new InvalidTarget('The resource parameter must name the resource of the authorization detail, or be left out.');
  const resource = await findResourceByIdentifier(ctx, detail.resource);
  if (resource === undefined) throw new InvalidAuthorizationDetails('The resource of the authorization detail is not registered with this server.', { detail: `unknown resource ${detail.resource}` });
  return resource;
}

/**
 * Decides the detail's action as the gateway would decide a call with these arguments: in the
 * roles of both the agent and the person, of the declared argument types, and not forbidden by
 * the policy. A decision that needs the person's approval passes, because obtaining that approval
 * is the purpose of the request. The policy gets the method, path and query when the detail binds them.
 * The gateway decides again at the call, with its actual method and path.
 */
async function decideDetail(ctx: ServerContext, client: Client, user: User, resource: ResourceWithActions, detail: MandateActionDetail): Promise<AuditedDecision> {
  const action: ResourceAction | undefined = resource.actions.find((candidate) => candidate.name === detail.action);
  if (action === undefined) throw new InvalidAuthorizationDetails(`The resource ${resource.identifier} has no action ${JSON.stringify(detail.action)}.`);
  const target = requireTargetOfAction(resource, action, detail);

  const audited = await decideCall(ctx, {
    userId: user.id,
    agentId: client.client_id,
    resource: { identifier: resource.identifier, name: resource.name },
    action,
    arguments: { ...(detail.arguments === undefined ? {} : { values: detail.arguments }), duplicateNames: [] },
    ...(detail.method === undefined ? {} : { method: detail.method }),
    ...(target === undefined ? {} : { path: target.decoded, query: target.query }),
  });
  const { decision } = audited;
  if (decision.decision !== 'deny') return audited;

  const reason = { detail: `authorization detail denied by ${decision.reasons.deniedBy ?? 'unknown'}: ${decision.reasons.errors.join('; ')}` };
  switch (decision.reasons.deniedBy) {
    case 'argument_type':
      throw new InvalidAuthorizationDetails(`The arguments do not match the declared arguments of ${action.name}: ${decision.reasons.errors.join('; ')}.`, reason);
    case 'agent_roles':
      throw new AccessDenied(`The agent's roles do not grant ${action.name} on ${resource.identifier}.`, reason);
    case 'user_roles':
      throw new AccessDenied(`The person's roles do not grant ${action.name} on ${resource.identifier}.`, reason);
    case 'policy':
      throw new AccessDenied(`A policy forbids ${action.name} with these arguments.`, reason);
    default:
      throw new AccessDenied(`Mandate could not evaluate its policy for ${action.name}, so the request is denied.`, reason);
  }
}

/**
 * Checks that the gateway would map a call with the detail's method and path to the detail's
 * action, and returns the normalized path. Otherwise the approved call could never be made: the
 * gateway maps each call to the action with the longest matching path prefix, so a path under
 * this action's prefix may still belong to a more specific action.
 */
function requireTargetOfAction(resource: ResourceWithActions, action: ResourceAction, detail: MandateActionDetail): UpstreamPath | undefined {
  const target = detailTarget(detail);
  const mismatch = actionMismatch(resource.actions, action, detail.method, target?.decoded);
  if (mismatch !== undefined) throw new InvalidAuthorizationDetails(`${mismatch} Ask for the action that covers the request, or for a request that ${action.name} covers.`);
  return target;
}
