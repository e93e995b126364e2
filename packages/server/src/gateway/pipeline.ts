import type { IncomingHttpHeaders } from 'node:http';
import type { ServerContext } from '../context.ts';
import type { AuditEvent } from '../audit/entry.ts';
import { tokenDigest } from '../audit/log.ts';
import { decideCall } from '../policy/decision-point.ts';
import type { Decision } from '../policy/decision.ts';
import { jsonBodyArguments } from '../policy/json-arguments.ts';
import { findResourceByName } from '../resources/registry.ts';
import { AccessDenied, InsufficientScope, InvalidRequest, MissingToken, OAuthError, TemporarilyUnavailable } from '../oauth/errors.ts';
import { sha256Hex } from '../store/ids.ts';
import { redactCredentialParameters } from '../http/query-parameters.ts';
import { readCredential } from '../vault/connections.ts';
import type { Approval } from '../approvals/service.ts';
import type { Db } from '../store/db.ts';
import { checkAuthorizationDetails } from '../oauth/ciba/detail-enforcement.ts';
import { matchAction } from './action-match.ts';
import { APPROVAL_FIELD, ApprovalRejected, ApprovalRequired, passApprovalGate } from './approval-gate.ts';
import { CallerRejected, checkDelegation, presentedToken, useDpopChallenge, verifyDelegatedToken, verifySenderConstraint } from './authenticate.ts';
import { buildOutgoingRequest, sendUpstream, type OutgoingRequest, type UpstreamResponse } from './forward.ts';
import { normalizeUpstreamPath, requestTarget, splitRequestTarget, type UpstreamPath } from './path.ts';
import { checkBodyCredentials, checkContentEncoding, checkNoOverride, checkQueryCredentials, ContentEncodingRejected, CredentialParameterRejected, OverrideRejected } from './request-checks.ts';

export interface GatewayRequest {
  /** The `<resource>` segment of `/gateway/<resource>/…`. */
  resourceName: string;
  method: string;
  /** The raw request target after `/gateway/<resource>`, with its query. */
  target: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  requestId: string;
}

const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{1,64}$/;

/** The fields that the audit entries of one request share, filled in as the checks pass. */
interface Trail {
  user?: string;
  agent?: string;
  target: Record<string, unknown>;
  reason: Record<string, unknown>;
}

/**
 * Runs one gateway call: authenticate the delegated token, confirm the delegation, map the
 * request to an action, decide it against the current roles, pass the approval gate, read
 * the person's upstream credential, audit, forward, audit the result. Each failed check is
 * audited as `gateway.denied` and thrown as an OAuth error, and nothing reaches the upstream
 * unless the `gateway.call` entry was appended.
 */
export async function runGatewayCall(ctx: ServerContext, input: GatewayRequest): Promise<UpstreamResponse> {
  const trail: Trail = { target: { resource_name: input.resourceName, method: input.method }, reason: {} };
  const presented = presentedToken(singleField(input.headers.authorization));
  const deny = async (error: OAuthError, reason: Record<string, unknown>): Promise<never> => {
    if (presented?.scheme === 'DPoP') useDpopChallenge(error);
    await auditQuietly(ctx, { event: 'gateway.denied', user: trail.user, agent: trail.agent, target: trail.target, outcome: { decision: 'denied', error: error.error, status: error.status }, reason: { ...trail.reason, ...reason }, request_id: input.requestId });
    ctx.logger.info({ reqId: input.requestId, user: trail.user, agent: trail.agent, delegation: trail.reason.delegation_id, target: loggedTarget(trail.target), error: error.error, check: reason.check }, 'gateway call denied');
    throw error;
  };

  // a. Credentials in the query, a content-coded body, credentials in a form body, then resource
  //    and token (RFC 6750 §2.1-§2.3, §3.1; RFC 9110 §8.4; RFC 9449 §7.1). The query is checked
  //    first: every later audit entry, log line and approval could record it.
  const { rawPath, query } = splitRequestTarget(input.target);
  const headerToken = presented === undefined ? {} : { token_digest: tokenDigest(presented.token) };
  try {
    checkQueryCredentials(query);
  } catch (error) {
    if (!(error instanceof CredentialParameterRejected)) throw error;
    return deny(error, { check: 'query_credential', parameter: error.parameter, raw_path: rawPath.slice(0, 512), ...headerToken });
  }
  try {
    checkContentEncoding(input.headers);
  } catch (error) {
    if (!(error instanceof ContentEncodingRejected)) throw error;
    return deny(error, { check: 'content_encoding', content_encoding: error.codings.slice(0, 100), ...headerToken });
  }
  try {
    checkBodyCredentials(input.body, singleField(input.headers['content-type']));
  } catch (error) {
    if (!(error instanceof CredentialParameterRejected)) throw error;
    return deny(error, { check: 'body_credential', parameter: error.parameter, ...headerToken });
  }

  if (presented === undefined) return deny(new MissingToken(), { check: 'token_missing' });
  const token = presented.token;

  const resource = await findResourceByName(ctx, input.resourceName);
  if (resource === undefined || resource.upstream_base_url === null || resource.upstream_auth === null) {
    return deny(new OAuthError('invalid_request', 404, `No gateway resource is named ${JSON.stringify(input.resourceName)}.`), { check: 'resource_unknown', token_digest: tokenDigest(token) });
  }
  trail.target = { ...trail.target, resource: resource.identifier };

  let caller;
  try {
    const claims = await verifyDelegatedToken(ctx, token, resource.identifier);
    trail.user = claims.sub;
    trail.agent = claims.act.sub;
    trail.reason = { delegation_id: claims.delegation_id, token_jti: claims.jti };

    // RFC 9449 §7: a DPoP-bound token needs the DPoP scheme and a proof for this request.
    const url = `${ctx.config.issuer}/gateway/${encodeURIComponent(input.resourceName)}${input.target}`;
    await verifySenderConstraint(ctx, presented, claims, { proof: input.headers.dpop, method: input.method, url });

    // b. The delegation and both principals are still live.
    caller = await checkDelegation(ctx, claims, resource.id);
  } catch (error) {
    if (!(error instanceof CallerRejected)) throw error;
    if (error.claims === undefined) {
      return deny(error.denial, { check: error.check, token_digest: tokenDigest(token), detail: error.denial.message });
    }
    // A token without `act` is the agent's own (client_credentials): its `sub` is the agent, not a person.
    if (error.check === 'not_delegated') trail.agent = error.claims.client_id;
    else trail.user ??= error.claims.sub;
    trail.reason = { ...trail.reason, token_jti: error.claims.jti };
    return deny(error.denial, { check: error.check });
  }

  // c. Path and action.
  let path: UpstreamPath;
  try {
    path = normalizeUpstreamPath(input.target);
  } catch (error) {
    if (!(error instanceof InvalidRequest)) throw error;
    return deny(error, { check: 'path_invalid', raw_path: input.target.slice(0, 512) });
  }
  const pathWithQuery = requestTarget(path);
  trail.target = { ...trail.target, path: pathWithQuery };

  try {
    checkNoOverride(input.headers, path.query, input.body, singleField(input.headers['content-type']));
  } catch (error) {
    if (!(error instanceof OverrideRejected)) throw error;
    return deny(error, { check: 'override', override: error.source });
  }

  const action = matchAction(resource.actions, input.method, path.decoded);
  if (action === undefined) return deny(new AccessDenied(`No action of resource ${resource.name} covers ${input.method} ${path.decoded}.`), { check: 'action_unmapped' });
  trail.target = { ...trail.target, action: action.name };

  // d. The decision: the current roles of the person and the agent within the token's scope,
  //    then the policy's conditions on the call and its arguments.
  const { decision, audit: policyDecision } = await decideCall(ctx, {
    userId: caller.userId,
    agentId: caller.agentId,
    delegatingAgentIds: caller.delegatingAgentIds,
    token,
    tokenScope: [...caller.scope],
    resource: { identifier: resource.identifier, name: resource.name },
    action,
    arguments: jsonBodyArguments(singleField(input.headers['content-type']), input.body),
    method: input.method.toUpperCase(),
    path: path.decoded,
    query: path.query,
  });
  trail.reason = { ...trail.reason, user_roles: decision.reasons.userRoles, agent_roles: decision.reasons.agentRoles, policy_decision: policyDecision };
  if (decision.decision === 'deny') return deny(denialError(action.name, decision), { check: 'policy', denied_by: decision.reasons.deniedBy });

  // e. Approval of this exact request by the person, or the advance approval the token carries (CIBA).
  const detailed = await checkAuthorizationDetails(ctx, caller.claims, { resource: resource.identifier, action: action.name, body: input.body, contentType: singleField(input.headers['content-type']), method: input.method.toUpperCase(), target: path, approvalRequired: decision.decision === 'approval_required', mode: 'use' });
  if (detailed.kind === 'refused') return deny(detailed.error, { check: 'authorization_details', detail: detailed.reason });
  let approvalId: string | null = detailed.kind === 'approved' ? detailed.approvalId : null;
  if (decision.decision === 'approval_required' && approvalId === null) {
    const presented = singleField(input.headers[APPROVAL_FIELD]);
    if (presented !== undefined && !APPROVAL_ID.test(presented)) return deny(new InvalidRequest('The Mandate-Approval header must contain one approval id.'), { check: 'approval_malformed' });

    const binding = { userId: caller.userId, agentId: caller.agentId, resource: resource.identifier, action: action.name, method: input.method, path: pathWithQuery, bodyHash: sha256Hex(input.body) };
    let outcome;
    try {
      outcome = await passApprovalGate(ctx, { approvalId: presented, binding, delegationId: caller.delegation.id, resourceId: resource.id, body: input.body, contentType: singleField(input.headers['content-type']), auditRequest: approvalRequestAuditor(ctx, trail, input.requestId) });
    } catch (error) {
      if (!(error instanceof ApprovalRejected)) throw error;
      return deny(error, { check: 'approval', approval_id: presented, approval_failure: error.reason });
    }

    if (outcome.kind === 'requested') {
      // A new approval is audited as `approval.requested`. A repeat of a pending one still records its decision here.
      if (!outcome.created) await auditQuietly(ctx, { event: 'gateway.denied', user: trail.user, agent: trail.agent, target: trail.target, outcome: { decision: 'approval_required', error: 'approval_required', status: 403 }, reason: { ...trail.reason, check: 'approval', approval_id: outcome.approval.id }, request_id: input.requestId });
      throw new ApprovalRequired(outcome.approval, ctx.config.issuer);
    }
    approvalId = outcome.approvalId;
  }
  trail.reason = { ...trail.reason, approval_id: approvalId };

  // f. The person's credential for the upstream; a decryption failure denies.
  let credential: string | undefined;
  try {
    credential = await readCredential(ctx, { userId: caller.userId, resourceId: resource.id });
  } catch (error) {
    ctx.logger.error({ err: { name: (error as Error).name }, connection: { user: caller.userId, resource: resource.id }, request_id: input.requestId }, 'stored upstream credential failed to decrypt');
    return deny(new AccessDenied('The stored upstream credential could not be decrypted; the person must store it again.'), { check: 'credential_unreadable' });
  }
  if (credential === undefined) return deny(new AccessDenied(`No upstream credential is stored for this person and resource ${resource.name}.`), { check: 'credential_missing' });

  let outgoing: OutgoingRequest;
  try {
    // A call the person approved (here or in advance through CIBA) forwards only the fields the approval covers.
    outgoing = buildOutgoingRequest({ baseUrl: resource.upstream_base_url, auth: resource.upstream_auth, allowLoopback: ctx.config.allowLoopbackUpstreams }, path, input.method, input.headers, input.body, credential, { approvedCall: approvalId !== null });
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    return deny(error, { check: 'upstream_configuration', detail: error.message });
  }
  if (outgoing.withheldFields.length > 0) trail.reason = { ...trail.reason, withheld_request_fields: outgoing.withheldFields };

  // g. The call is on the audit log before anything reaches the upstream.
  try {
    await ctx.audit({ event: 'gateway.call', user: trail.user, agent: trail.agent, target: trail.target, outcome: { decision: 'allowed' }, reason: trail.reason, request_id: input.requestId });
  } catch (error) {
    ctx.logger.error({ err: error, request_id: input.requestId }, 'audit append failed; the gateway call was not forwarded');
    throw new TemporarilyUnavailable('The audit log is unavailable, so the call was not forwarded. Retry later.');
  }

  // h. Forward; i. audit the result.
  let response: UpstreamResponse;
  try {
    response = await sendUpstream(outgoing, credential);
  } catch (error) {
    if (error instanceof OAuthError) await auditQuietly(ctx, { event: 'gateway.result', user: trail.user, agent: trail.agent, target: trail.target, outcome: { error: error.error, status: error.status }, reason: { ...trail.reason, detail: error.message }, request_id: input.requestId });
    throw error;
  }
  await auditQuietly(ctx, { event: 'gateway.result', user: trail.user, agent: trail.agent, target: trail.target, outcome: { upstream_status: response.status, bytes: response.body.length }, reason: trail.reason, request_id: input.requestId });
  ctx.logger.info({ reqId: input.requestId, user: trail.user, agent: trail.agent, delegation: trail.reason.delegation_id, target: loggedTarget(trail.target), upstream_status: response.status }, 'gateway call forwarded');
  return response;
}

/**
 * Audits a new approval request in the transaction that creates it. When the append fails
 * the approval is not created and the gateway responds 503.
 */
function approvalRequestAuditor(ctx: ServerContext, trail: Trail, requestId: string): (approval: Approval, trx: Db) => Promise<void> {
  return async (approval, trx) => {
    try {
      await ctx.audit({ event: 'approval.requested', user: trail.user, agent: trail.agent, target: { ...trail.target, approval_id: approval.id }, outcome: { status: 'pending' }, reason: { ...trail.reason, binding_hash: approval.binding_hash }, request_id: requestId }, trx);
    } catch (error) {
      ctx.logger.error({ err: error, request_id: requestId }, 'audit append failed; no approval was requested');
      throw new TemporarilyUnavailable('The audit log is unavailable, so no approval could be requested. Retry later.');
    }
  };
}

/**
 * Appends an entry for a request that is already being denied or that the upstream has
 * already processed. A failed append cannot change that outcome, so it is logged, not thrown.
 */
async function auditQuietly(ctx: ServerContext, event: AuditEvent): Promise<void> {
  try {
    await ctx.audit(event);
  } catch (error) {
    ctx.logger.error({ err: error, event: event.event, request_id: event.request_id }, 'audit append failed');
  }
}

/** Builds the error an agent receives for a denied decision. The audit entry has the full reasons. */
function denialError(actionName: string, decision: Decision): OAuthError {
  const { deniedBy, errors } = decision.reasons;
  switch (deniedBy) {
    case 'token_scope':
      return new InsufficientScope(`The action ${actionName} is not allowed: the access token does not carry this scope.`, actionName);
    case 'agent_roles':
      return new InsufficientScope(`The action ${actionName} is not allowed: the agent's roles do not grant it.`, actionName);
    case 'delegating_agent_roles':
      return new InsufficientScope(`The action ${actionName} is not allowed: the roles of an agent that handed this token on do not grant it.`, actionName);
    case 'user_roles':
      return new InsufficientScope(`The action ${actionName} is not allowed: the person's roles do not grant it.`, actionName);
    case 'argument_type':
      return new AccessDenied(`The call does not match the declared arguments of ${actionName}: ${errors.join('; ')}.`);
    case 'policy':
      return new AccessDenied(`A policy forbids this call of ${actionName}; the audit log names the policy.`);
    default:
      return new AccessDenied(`Mandate could not evaluate its policy for this call of ${actionName}, so the call is denied; the audit log has the reason.`);
  }
}

/** Returns the audit target for a log line, with the values of keys, codes and credentials in its query hidden. */
function loggedTarget(target: Record<string, unknown>): Record<string, unknown> {
  return typeof target.path === 'string' ? { ...target, path: redactCredentialParameters(target.path) } : target;
}

function singleField(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) return value.length === 1 ? value[0] : undefined;
  return value;
}
