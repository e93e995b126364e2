import type { ServerContext } from '../context.ts';
import { tokenDigest } from '../audit/log.ts';
import { sha256Hex } from '../store/ids.ts';
import { canonicalArguments } from './canonical-arguments.ts';
import { parseArgumentDeclarations, type ArgumentDeclarations } from './arguments.ts';
import { decide, type Decision, type DeniedBy } from './decision.ts';
import { readPartyPermissions } from './intersection.ts';
import type { CallArguments } from './json-arguments.ts';
import { policySetInForce } from './policy-store.ts';

/** One call to decide, as an enforcement point such as the gateway describes it. */
export interface CallToDecide {
  userId?: string | undefined;
  agentId?: string | undefined;
  /** The agents that handed the token on to `agentId`, the nearest first. */
  delegatingAgentIds?: readonly string[] | undefined;
  /** The access token. Only its digest reaches the audit log. */
  token?: string | undefined;
  tokenScope?: readonly string[] | undefined;
  resource: { identifier: string; name: string };
  action: { name: string; requires_approval: number; arguments?: string | null | undefined };
  arguments: CallArguments;
  method?: string | undefined;
  path?: string | undefined;
  /** The query string as sent, without `?`; absent or empty when the request has none. */
  query?: string | undefined;
}

/** A decision with the record of it that goes into the audit entry of the call. */
export interface AuditedDecision {
  decision: Decision;
  audit: Record<string, unknown>;
}

/**
 * Reads what a decision depends on (the current roles of the person, the agent and the agents
 * that handed it the token, the policy in force) and decides. Roles are read on every call and the policy version too,
 * so a changed role, assignment or policy applies to the next call. A damaged argument
 * declaration denies with `policy_error`. Database errors propagate, and the caller fails
 * closed on them.
 */
export async function decideCall(ctx: Pick<ServerContext, 'db' | 'tenantId' | 'logger'>, call: CallToDecide): Promise<AuditedDecision> {
  const [permissions, policySet] = await Promise.all([readPartyPermissions(ctx, { userId: call.userId, agentId: call.agentId, delegatingAgentIds: call.delegatingAgentIds }), policySetInForce(ctx)]);

  let declarations;
  try {
    declarations = parseArgumentDeclarations(call.action.arguments);
  } catch (error) {
    ctx.logger.error({ tenant: ctx.tenantId, resource: call.resource.identifier, action: call.action.name, err: { message: (error as Error).message } }, 'the argument declarations of an action are damaged, so its calls are denied');
    const decision: Decision = {
      decision: 'deny',
      reasons: { deniedBy: 'policy_error', userRoles: [], agentRoles: [], policies: [], approvalRequiredBy: [], errors: [(error as Error).message] },
      policyVersion: policySet.version,
      boundArguments: {},
    };
    return { decision, audit: auditRecord(call, decision, undefined) };
  }

  const decision = decide(
    {
      person: call.userId === undefined || permissions.userPermissions === undefined ? undefined : { id: call.userId, permissions: permissions.userPermissions },
      agent: call.agentId === undefined || permissions.agentPermissions === undefined ? undefined : { id: call.agentId, permissions: permissions.agentPermissions },
      delegatingAgents: (call.delegatingAgentIds ?? []).map((id) => ({ id, permissions: permissions.delegatingAgentPermissions?.get(id) ?? [] })),
      tokenScope: call.tokenScope,
      resource: call.resource,
      action: { name: call.action.name, requiresApproval: call.action.requires_approval === 1, arguments: declarations },
      context: {
        arguments: call.arguments.values,
        duplicateArguments: call.arguments.duplicateNames,
        numberLiterals: call.arguments.numberLiterals,
        unreadableBody: call.arguments.unreadable,
        unreadableReason: call.arguments.unreadableReason,
        method: call.method,
        path: call.path,
        query: call.query === '' ? undefined : call.query,
      },
    },
    policySet,
  );
  return { decision, audit: auditRecord(call, decision, declarations) };
}

/** Maximum length of an argument string copied into the audit entry. The digest covers the whole value. */
const MAX_AUDITED_STRING = 512;

/** Denials of the intersection step, which `decide` checks before the arguments and the policy. */
const INTERSECTION_DENIALS: ReadonlySet<DeniedBy> = new Set(['principal_missing', 'token_scope', 'agent_roles', 'delegating_agent_roles', 'user_roles']);

/**
 * Builds the audit record of a decision and its inputs: the token by digest only, the arguments
 * by the SHA-256 of their RFC 8785 canonical JSON, and the declared values that the policy read.
 * The inputs also name everything else the policy step reads (principals, resource, action with
 * its flag and declared types, method, path), so `mandate policy replay` can decide the call
 * again under another policy. `declarations` is undefined when the stored ones are damaged,
 * and then the decision never reached the intersection, so `intersection_allowed` is left out.
 */
function auditRecord(call: CallToDecide, decision: Decision, declarations: ArgumentDeclarations | undefined): Record<string, unknown> {
  const { reasons } = decision;
  const truncated = Object.entries(decision.boundArguments).filter(([, value]) => typeof value === 'string' && value.length > MAX_AUDITED_STRING).map(([name]) => name);
  return {
    result: decision.decision,
    policy_version: decision.policyVersion,
    ...(reasons.deniedBy === undefined ? {} : { denied_by: reasons.deniedBy }),
    ...(declarations === undefined ? {} : { intersection_allowed: reasons.deniedBy === undefined || !INTERSECTION_DENIALS.has(reasons.deniedBy) }),
    user_roles: reasons.userRoles,
    agent_roles: reasons.agentRoles,
    ...(reasons.delegatingAgentRoles === undefined ? {} : { delegating_agent_roles: reasons.delegatingAgentRoles }),
    policies: reasons.policies,
    approval_required_by: reasons.approvalRequiredBy,
    errors: reasons.errors,
    inputs: {
      ...(call.userId === undefined ? {} : { user: call.userId }),
      ...(call.agentId === undefined ? {} : { agent: call.agentId }),
      ...(call.delegatingAgentIds === undefined || call.delegatingAgentIds.length === 0 ? {} : { delegating_agents: [...call.delegatingAgentIds] }),
      resource: call.resource.identifier,
      resource_name: call.resource.name,
      action: call.action.name,
      requires_approval: call.action.requires_approval === 1,
      ...(declarations === undefined ? {} : { declared_arguments: { ...declarations } }),
      ...(call.method === undefined ? {} : { method: call.method }),
      ...(call.path === undefined ? {} : { path: call.path }),
      ...(call.query === undefined || call.query === '' ? {} : { query: call.query }),
      ...(call.token === undefined ? {} : { token_digest: tokenDigest(call.token) }),
      ...(call.tokenScope === undefined ? {} : { token_scope: [...call.tokenScope].sort() }),
      ...(call.arguments.values === undefined ? {} : { arguments_sha256: argumentsDigest(call.arguments.values) }),
      arguments: Object.fromEntries(Object.entries(decision.boundArguments).map(([name, value]) => [name, typeof value === 'string' && value.length > MAX_AUDITED_STRING ? `${value.slice(0, MAX_AUDITED_STRING)}…` : value])),
      ...(truncated.length === 0 ? {} : { arguments_truncated: truncated }),
    },
  };
}

/** Digests of argument objects already hashed, for the same reason as in canonical-arguments.ts. */
const digestsByArguments = new WeakMap<object, string | null>();

/** SHA-256 of the arguments' canonical JSON, or null when they have no canonical form (a number JSON.parse turned into Infinity). */
function argumentsDigest(values: Readonly<Record<string, unknown>>): string | null {
  const known = digestsByArguments.get(values);
  if (known !== undefined) return known;

  let digest: string | null;
  try {
    digest = sha256Hex(canonicalArguments(values));
  } catch {
    digest = null;
  }
  digestsByArguments.set(values, digest);
  return digest;
}
