import type { ServerContext } from '../context.ts';
import { tokenDigest } from '../audit/log.ts';
import { checkAuthorizationDetails } from '../oauth/ciba/detail-enforcement.ts';
import { MANDATE_ACTION_TYPE } from '../oauth/ciba/authorization-details.ts';
import { BACKCHANNEL_AUTHENTICATION_PATH } from '../oauth/ciba/backchannel-endpoint.ts';
import { TemporarilyUnavailable } from '../oauth/errors.ts';
import type { AccessTokenClaims } from '../oauth/access-token.ts';
import { decideCall } from '../policy/decision-point.ts';
import type { Decision, DecisionResult } from '../policy/decision.ts';
import { findResourceByIdentifier } from '../resources/registry.ts';
import { requestTarget } from '../gateway/path.ts';
import { actionMismatch } from '../gateway/action-match.ts';
import { canonicalArguments } from '../policy/canonical-arguments.ts';
import type { EvaluationRequest } from './evaluation-request.ts';
import { verifySubjectToken, type TokenSubject } from './subject-token.ts';

/** An AuthZEN Decision: `decision` is true only for `allow`, and `context` carries Mandate's reasons. */
export interface AuthzenDecision {
  decision: boolean;
  context: Record<string, unknown>;
}

/** The PEP and the request ids of one evaluation, for the audit entry and the log. */
export interface EvaluationCaller {
  /** The PEP's client_id. */
  pepClientId: string;
  /** Mandate's id of the HTTP request. */
  requestId: string;
  /** The PEP's `X-Request-ID`, when it sent one. */
  pepRequestId?: string | undefined;
  /** Position in an Access Evaluations batch. */
  batchIndex?: number | undefined;
}

/**
 * The checks that deny before or after the decision point. The resource or action may not be
 * registered, or the subject token may be invalid or of a kind Mandate does not evaluate. The
 * token's authorization details may exclude the call, or the evaluation itself may fail.
 */
type EvaluationDenial = 'resource_unknown' | 'action_unknown' | 'action_mismatch' | 'token_invalid' | 'subject_unsupported' | 'authorization_details' | 'evaluation_error';

interface Outcome {
  result: DecisionResult;
  deniedBy?: string | undefined;
  /** The failed check, for the audit entry. */
  check?: string | undefined;
  /** A reason that the PEP may pass on to the agent. */
  reason: string;
  claims?: AccessTokenClaims | undefined;
  subject?: TokenSubject | undefined;
  policy?: { decision: Decision; audit: Record<string, unknown> } | undefined;
  /** The CIBA request whose advance approval this call used. */
  approvalId?: string | undefined;
  /** The approval request that the agent sends to Mandate to obtain the person's approval. */
  approval?: Record<string, unknown> | undefined;
  /** HTTP status that describes an evaluation that failed (AuthZEN "Errors": per-evaluation errors). */
  errorStatus?: number | undefined;
}

/**
 * Evaluates one access request and audits it as `authzen.evaluation` before returning it. Every
 * path that is not an explicit allow returns `decision: false`, including an evaluation that
 * throws. An audit append that fails throws `temporarily_unavailable`, so no decision leaves
 * Mandate without its audit entry.
 */
export async function evaluateAccess(ctx: ServerContext, request: EvaluationRequest, caller: EvaluationCaller): Promise<AuthzenDecision> {
  let outcome: Outcome;
  try {
    outcome = await decideEvaluation(ctx, request);
  } catch (error) {
    ctx.logger.error({ err: error, reqId: caller.requestId, pep: caller.pepClientId, resource: request.resourceIdentifier, action: request.actionName }, 'AuthZEN evaluation failed, so it is denied');
    outcome = { result: 'deny', deniedBy: 'evaluation_error', check: 'evaluation_error', reason: 'Mandate could not complete this evaluation, so it is denied; retry later.', errorStatus: 500 };
  }

  try {
    await ctx.audit(auditEntry(request, caller, outcome));
  } catch (error) {
    ctx.logger.error({ err: error, reqId: caller.requestId, pep: caller.pepClientId }, 'audit append failed; no AuthZEN decision was returned');
    throw new TemporarilyUnavailable('The audit log is unavailable, so no decision was returned. Retry later.');
  }

  ctx.logger.info(
    { reqId: caller.requestId, pep: caller.pepClientId, user: outcome.subject?.userId, agent: outcome.subject?.agentId, resource: request.resourceIdentifier, action: request.actionName, result: outcome.result, denied_by: outcome.deniedBy },
    'AuthZEN evaluation decided',
  );
  return responseOf(outcome);
}

async function decideEvaluation(ctx: ServerContext, request: EvaluationRequest): Promise<Outcome> {
  const deny = (deniedBy: EvaluationDenial, reason: string, details: Partial<Outcome> = {}): Outcome => ({ result: 'deny', deniedBy, check: deniedBy, reason, ...details });

  const resource = await findResourceByIdentifier(ctx, request.resourceIdentifier);
  if (resource === undefined) return deny('resource_unknown', 'No resource is registered with this identifier.');

  const verified = await verifySubjectToken(ctx, request.subjectToken, resource);
  if (verified.kind === 'rejected') {
    const { deniedBy, check, reason, claims } = verified.rejection;
    return deny(deniedBy, reason, { check, claims });
  }
  const subject = verified.subject;

  const action = resource.actions.find((candidate) => candidate.name === request.actionName);
  if (action === undefined) return deny('action_unknown', `The resource ${resource.name} has no action ${request.actionName}.`, { subject });
  // The gateway picks the action from the method and path, so a described call that it would map
  // to another action is not a call of this one, and a policy on this action must not judge it.
  const mismatch = actionMismatch(resource.actions, action, request.method, request.target?.decoded);
  if (mismatch !== undefined) return deny('action_mismatch', mismatch, { subject });

  // The decision point reads the current roles and policy: intersection, then Cedar conditions.
  const policy = await decideCall(ctx, {
    userId: subject.userId,
    agentId: subject.agentId,
    delegatingAgentIds: subject.delegatingAgentIds,
    token: request.subjectToken,
    tokenScope: subject.scope,
    resource: { identifier: resource.identifier, name: resource.name },
    action,
    arguments: { values: request.arguments, duplicateNames: [] },
    method: request.method,
    path: request.target?.decoded,
    query: request.target?.query,
  });
  const decided = policy.decision;
  if (decided.decision === 'deny') return { result: 'deny', deniedBy: decided.reasons.deniedBy ?? 'policy_error', check: 'policy', reason: denialReason(action.name, decided), subject, policy };

  // RFC 9396: a token's authorization details limit it to the approved call. An unused advance
  // approval given through CIBA replaces the approval this call needs. For a gateway resource the
  // evaluation only checks, so the approval stays unused for the gateway call that uses it. For a
  // resource without a gateway upstream the PEP's evaluation is the only enforcement, so it uses
  // the approval, once. A detail that binds the method, path or query needs them in the context.
  const usesApproval = resource.upstream_base_url === null;
  const detailed = await checkAuthorizationDetails(ctx, subject.claims, {
    resource: resource.identifier,
    action: action.name,
    body: request.arguments === undefined ? Buffer.alloc(0) : Buffer.from(canonicalArguments(request.arguments), 'utf8'),
    contentType: request.arguments === undefined ? undefined : 'application/json',
    method: request.method,
    target: request.target,
    approvalRequired: decided.decision === 'approval_required',
    mode: usesApproval ? 'use' : 'check',
  });
  if (detailed.kind === 'refused') return deny('authorization_details', detailed.error.description, { check: `authorization_details:${detailed.reason}`, subject, policy });
  if (detailed.kind === 'approved') {
    const use = usesApproval ? 'this evaluation used it' : 'the approval is still unused, and the gateway call uses it';
    return { result: 'allow', reason: `The person approved this call of ${action.name} in advance; ${use}.`, subject, policy, approvalId: detailed.approvalId };
  }

  if (decided.decision === 'approval_required') {
    return {
      result: 'approval_required',
      reason:
        subject.userId === undefined
          ? `This call of ${action.name} needs a person's approval, and the access token acts for no person, so it cannot be approved.`
          : `This call of ${action.name} needs the person's approval. Ask for it through CIBA with the authorization_details in context.approval, then repeat the call with the access token that Mandate issues.`,
      subject,
      policy,
      approval: subject.userId === undefined ? undefined : approvalRequest(ctx, resource.identifier, action.name, request.arguments),
    };
  }
  return { result: 'allow', reason: `The call of ${action.name} is allowed.`, subject, policy };
}

/** Builds the request that the agent sends to the CIBA backchannel endpoint to ask the person for this exact call. */
function approvalRequest(ctx: ServerContext, resource: string, action: string, callArguments: Record<string, unknown> | undefined): Record<string, unknown> {
  return {
    authorization_details: [{ type: MANDATE_ACTION_TYPE, resource, action, ...(callArguments === undefined ? {} : { arguments: callArguments }) }],
    backchannel_authentication_endpoint: `${ctx.config.issuer}${BACKCHANNEL_AUTHENTICATION_PATH}`,
  };
}

/** Returns a reason the agent may read. It names the party that denied and leaves policy internals to the audit log. */
function denialReason(actionName: string, decision: Decision): string {
  switch (decision.reasons.deniedBy) {
    case 'token_scope':
      return `The action ${actionName} is not allowed: the access token does not carry this scope.`;
    case 'agent_roles':
      return `The action ${actionName} is not allowed: the agent's roles do not grant it.`;
    case 'delegating_agent_roles':
      return `The action ${actionName} is not allowed: the roles of an agent that handed this token on do not grant it.`;
    case 'user_roles':
      return `The action ${actionName} is not allowed: the person's roles do not grant it.`;
    case 'argument_type':
      return `The call does not match the declared arguments of ${actionName}: ${decision.reasons.errors.join('; ')}.`;
    case 'policy':
      return `A policy forbids this call of ${actionName}; the audit log names the policy.`;
    default:
      return `Mandate could not evaluate its policy for this call of ${actionName}, so the call is denied; the audit log has the reason.`;
  }
}

function responseOf(outcome: Outcome): AuthzenDecision {
  const { subject, policy } = outcome;
  const reasons = policy?.decision.reasons;
  const context: Record<string, unknown> = {
    result: outcome.result,
    ...(outcome.deniedBy === undefined ? {} : { denied_by: outcome.deniedBy }),
    reason: outcome.reason,
  };

  if (subject !== undefined) {
    if (subject.userId !== undefined) context.person = subject.userId;
    context.agent = subject.agentId;
    if (subject.delegatingAgentIds.length > 0) context.delegating_agents = subject.delegatingAgentIds;
    context.scope = subject.scope;
    if (subject.delegationId !== undefined) context.delegation_id = subject.delegationId;
    // The PEP checks the DPoP proof of the request it received against this key thumbprint.
    if (subject.jkt !== undefined) context.cnf = { jkt: subject.jkt };
  }
  if (policy !== undefined && reasons !== undefined) {
    context.user_roles = reasons.userRoles;
    context.agent_roles = reasons.agentRoles;
    if (reasons.delegatingAgentRoles !== undefined) context.delegating_agent_roles = reasons.delegatingAgentRoles;
    context.policies = reasons.policies;
    context.approval_required_by = reasons.approvalRequiredBy;
    context.policy_version = policy.decision.policyVersion;
    if (reasons.deniedBy === 'argument_type') context.errors = reasons.errors;
  }
  if (outcome.approvalId !== undefined) context.approval_id = outcome.approvalId;
  if (outcome.approval !== undefined) context.approval = outcome.approval;
  if (outcome.errorStatus !== undefined) context.error = { status: outcome.errorStatus, message: outcome.reason };

  return { decision: outcome.result === 'allow', context };
}

function auditEntry(request: EvaluationRequest, caller: EvaluationCaller, outcome: Outcome) {
  const claims = outcome.subject?.claims ?? outcome.claims;
  const delegated = typeof claims?.act === 'object' && claims.act !== null;
  return {
    event: 'authzen.evaluation',
    user: outcome.subject?.userId ?? (delegated ? claims?.sub : undefined),
    agent: outcome.subject?.agentId ?? (delegated ? claims?.act?.sub : claims?.client_id),
    actor: caller.pepClientId,
    target: {
      resource: request.resourceIdentifier,
      action: request.actionName,
      ...(request.method === undefined ? {} : { method: request.method }),
      ...(request.target === undefined ? {} : { path: requestTarget(request.target).slice(0, 512) }),
    },
    outcome: { decision: outcome.result === 'allow', result: outcome.result },
    reason: {
      ...(outcome.check === undefined ? {} : { check: outcome.check }),
      ...(outcome.deniedBy === undefined ? {} : { denied_by: outcome.deniedBy }),
      token_digest: tokenDigest(request.subjectToken),
      ...(claims === undefined ? {} : { token_jti: claims.jti }),
      ...(outcome.subject?.delegationId === undefined ? {} : { delegation_id: outcome.subject.delegationId }),
      ...(outcome.policy === undefined ? {} : { policy_decision: outcome.policy.audit }),
      ...(outcome.approvalId === undefined ? {} : { approval_id: outcome.approvalId }),
      ...(caller.pepRequestId === undefined ? {} : { pep_request_id: caller.pepRequestId.slice(0, 200) }),
      ...(caller.batchIndex === undefined ? {} : { batch_index: caller.batchIndex }),
    },
    request_id: caller.requestId,
  };
}
