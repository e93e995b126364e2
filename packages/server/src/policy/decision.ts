import { bindArguments, type ArgumentDeclarations, type ArgumentValue } from './arguments.ts';
import type { PolicySet } from './cedar-compile.ts';
import { evaluateCedar } from './cedar-evaluate.ts';
import { intersect } from './intersection.ts';
import type { Permission } from './permissions.ts';

/** A person or an agent, with the permissions of their current roles. */
export interface Party {
  id: string;
  permissions: readonly Permission[];
}

/** Everything one decision depends on. The caller reads the roles and the policy, so `decide` reads nothing. */
export interface DecisionRequest {
  /** The person involved: the one an agent acts for, or the caller itself. Absent when no person is involved. */
  person?: Party | undefined;
  /** The agent acting, absent for a person's own call. */
  agent?: Party | undefined;
  /**
   * The agents that handed the token on to `agent` by token exchange, the nearest first. Each
   * must grant the action too, and in Cedar the agent is `in` each of them.
   */
  delegatingAgents?: readonly Party[] | undefined;
  /** The scope of the access token, absent when no token is involved. */
  tokenScope?: readonly string[] | undefined;
  resource: { identifier: string; name: string };
  action: {
    name: string;
    /** The action's own flag: every call needs the person's approval. */
    requiresApproval: boolean;
    /** The arguments the action declares for policies. */
    arguments: ArgumentDeclarations;
  };
  context: {
    /** The call's arguments (the top-level members of a JSON body), absent when it has none. */
    arguments?: Readonly<Record<string, unknown>> | undefined;
    /** Argument names that occur more than once in the call. */
    duplicateArguments?: readonly string[] | undefined;
    /** Source text of each number argument as the body wrote it, when the arguments came from JSON text. */
    numberLiterals?: ReadonlyMap<string, string> | undefined;
    /** True when the call has a body that is not a JSON object, so its arguments cannot be read. */
    unreadableBody?: boolean | undefined;
    /** The reason the body cannot be read, for the denial message. */
    unreadableReason?: string | undefined;
    method?: string | undefined;
    path?: string | undefined;
    /** The query string as sent, without `?`; absent when the request has none. */
    query?: string | undefined;
  };
}

export type DecisionResult = 'allow' | 'deny' | 'approval_required';

/**
 * The check that denied: a party of the intersection (`token_scope`, `agent_roles`,
 * `delegating_agent_roles`, `user_roles`), a declared argument of the wrong type, a matching `forbid`, or a policy that
 * could not be evaluated. `principal_missing` is a request that names neither party.
 */
export type DeniedBy = 'principal_missing' | 'token_scope' | 'agent_roles' | 'delegating_agent_roles' | 'user_roles' | 'argument_type' | 'policy' | 'policy_error';

/** Marks the action's own `requires_approval` flag among the reasons for an approval. */
export const ACTION_FLAG = 'requires_approval';

export interface DecisionReasons {
  deniedBy?: DeniedBy;
  /** Roles of the person that grant the action. */
  userRoles: string[];
  /** Roles of the agent that grant the action. */
  agentRoles: string[];
  /** Roles of each agent that handed the token on, by client_id, that grant the action; absent without such agents. */
  delegatingAgentRoles?: Record<string, string[]>;
  /** Cedar policy ids that determined a deny or an approval. */
  policies: string[];
  /** Why the person must approve: approval policy ids and/or `requires_approval`. */
  approvalRequiredBy: string[];
  /** Argument type errors and policy evaluation errors. */
  errors: string[];
}

export interface Decision {
  decision: DecisionResult;
  reasons: DecisionReasons;
  /** The policy version that decided, or 0 when no policy is stored. */
  policyVersion: number;
  /** The declared arguments present with their declared types, as passed to Cedar. */
  boundArguments: Record<string, ArgumentValue>;
}

/**
 * Decides one call. Pure and synchronous: no database, network, clock or model output, so the
 * same request and policy set always give the same decision.
 *
 * 1. Intersection (default deny): the action must be in the token scope, granted by an agent
 *    role, by a role of every agent that handed the token on, and by a person role, for each
 *    party involved.
 * 2. Declared arguments must have their declared types.
 * 3. Cedar conditions: a matching plain `forbid` denies, a matching `@approval` forbid needs
 *    the person's approval, and any evaluation error denies.
 * 4. The action's `requires_approval` flag needs the person's approval.
 *
 * Anything that throws is a deny with `policy_error`.
 */
export function decide(request: DecisionRequest, policySet: PolicySet): Decision {
  const reasons: DecisionReasons = { userRoles: [], agentRoles: [], policies: [], approvalRequiredBy: [], errors: [] };
  let boundArguments: Record<string, ArgumentValue> = {};
  const deny = (deniedBy: DeniedBy, details: Partial<DecisionReasons> = {}): Decision => ({
    decision: 'deny',
    reasons: { ...reasons, ...details, deniedBy },
    policyVersion: policySet.version,
    boundArguments,
  });

  try {
    // Bound first, so the audit entry shows the arguments whatever check denies.
    const bound = bindArguments(request.action.arguments, request.context.arguments, request.context.duplicateArguments, request.context.numberLiterals);
    boundArguments = bound.values;

    if (request.person === undefined && request.agent === undefined) return deny('principal_missing');

    const intersection = intersect(
      {
        userPermissions: request.person?.permissions,
        agentPermissions: request.agent?.permissions,
        delegatingAgentPermissions: request.delegatingAgents === undefined ? undefined : new Map(request.delegatingAgents.map((party) => [party.id, party.permissions])),
        tokenScope: request.tokenScope === undefined ? undefined : new Set(request.tokenScope),
      },
      request.resource.identifier,
      request.action.name,
    );
    reasons.userRoles = intersection.userRoles;
    reasons.agentRoles = intersection.agentRoles;
    if (request.delegatingAgents !== undefined && request.delegatingAgents.length > 0) reasons.delegatingAgentRoles = intersection.delegatingAgentRoles;
    if (intersection.deniedBy !== undefined) return deny(intersection.deniedBy);

    if (bound.typeErrors.length > 0) return deny('argument_type', { errors: bound.typeErrors });
    // An action that declares arguments is judged on them. A body they cannot be read from (say,
    // JSON sent as text/plain) would pass every `when` condition while the upstream acts on it.
    if (request.context.unreadableBody === true && Object.keys(request.action.arguments).length > 0) {
      const reason = request.context.unreadableReason === undefined ? '' : ` (${request.context.unreadableReason})`;
      return deny('argument_type', { errors: [`the body must be a UTF-8 JSON object sent as application/json, because the action declares arguments${reason}`] });
    }

    if (policySet.kind === 'invalid') return deny('policy_error', { errors: [...policySet.errors] });
    if (policySet.kind === 'cedar') {
      const outcome = evaluateCedar(policySet, {
        agentId: request.agent?.id,
        delegatingAgentIds: request.delegatingAgents?.map((party) => party.id),
        personId: request.person?.id,
        resourceIdentifier: request.resource.identifier,
        resourceName: request.resource.name,
        actionName: request.action.name,
        arguments: bound.values,
        method: request.context.method,
        path: request.context.path,
        query: request.context.query,
      });
      if (outcome.kind === 'error') return deny('policy_error', { errors: outcome.errors });
      if (outcome.kind === 'forbid') return deny('policy', { policies: outcome.policies });
      if (outcome.kind === 'approval') {
        reasons.policies = outcome.policies;
        reasons.approvalRequiredBy = [...outcome.policies];
      }
    }

    if (request.action.requiresApproval) reasons.approvalRequiredBy.push(ACTION_FLAG);
    const decision: DecisionResult = reasons.approvalRequiredBy.length > 0 ? 'approval_required' : 'allow';
    return { decision, reasons, policyVersion: policySet.version, boundArguments };
  } catch (error) {
    return deny('policy_error', { errors: [`The decision failed: ${error instanceof Error ? error.message : String(error)}`] });
  }
}
