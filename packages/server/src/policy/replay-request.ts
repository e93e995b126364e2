import { z } from 'zod';
import { ARGUMENT_TYPES } from './arguments.ts';
import type { DecisionRequest } from './decision.ts';
import type { Permission } from './permissions.ts';

/**
 * Denials that `decide` reaches before the policy, and that no policy change can undo or cause.
 * `delegating_agent_roles` is the intersection's check of agents that handed the token on.
 */
const DECIDED_BEFORE_POLICY = new Set(['principal_missing', 'token_scope', 'agent_roles', 'delegating_agent_roles', 'user_roles', 'argument_type']);

/**
 * The `policy_decision` record that decision-point.ts writes into audit entries. Members are
 * optional where older entries lack them, and unknown members are ignored, so the record can
 * grow without breaking replay.
 */
const recordedDecision = z.object({
  result: z.enum(['allow', 'deny', 'approval_required']),
  policy_version: z.number(),
  denied_by: z.string().optional(),
  intersection_allowed: z.boolean().optional(),
  user_roles: z.array(z.string()),
  agent_roles: z.array(z.string()),
  delegating_agent_roles: z.record(z.string(), z.array(z.string())).optional(),
  policies: z.array(z.string()),
  approval_required_by: z.array(z.string()).optional(),
  errors: z.array(z.string()).optional(),
  inputs: z
    .object({
      user: z.string().optional(),
      agent: z.string().optional(),
      delegating_agents: z.array(z.string()).optional(),
      resource: z.string().optional(),
      resource_name: z.string().optional(),
      action: z.string().optional(),
      requires_approval: z.boolean().optional(),
      declared_arguments: z.record(z.string(), z.enum(ARGUMENT_TYPES)).optional(),
      method: z.string().optional(),
      path: z.string().optional(),
      query: z.string().optional(),
      token_scope: z.array(z.string()).optional(),
      arguments: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
      arguments_truncated: z.array(z.string()).optional(),
    })
    .optional(),
});

export type RecordedDecision = z.output<typeof recordedDecision>;

/** The `inputs` of a record that planReplay has found complete. */
type CompleteInputs = Required<Pick<NonNullable<RecordedDecision['inputs']>, 'resource' | 'resource_name' | 'action' | 'requires_approval' | 'declared_arguments' | 'arguments'>>;

/**
 * The replay plan of one recorded decision: `recorded` when the policy was never reached (the
 * intersection, the argument types or a damaged argument declaration denied, and a policy
 * change alters none of them), `decide` with the request to decide again, or `unreplayable`
 * with the reason.
 */
export type ReplayPlan =
  | { kind: 'recorded'; record: RecordedDecision }
  | { kind: 'decide'; record: RecordedDecision; request: DecisionRequest }
  | { kind: 'unreplayable'; reason: string; record?: RecordedDecision };

/**
 * Plans the replay of one audit entry's `policy_decision`: checks that the record has every
 * input the policy step reads, then builds the request with replayDecisionRequest.
 */
export function planReplay(value: unknown): ReplayPlan {
  const parsed = recordedDecision.safeParse(value);
  if (!parsed.success) return { kind: 'unreplayable', reason: 'the policy_decision of the entry does not have the recorded form' };
  const record = parsed.data;

  if (record.intersection_allowed === false || (record.denied_by !== undefined && DECIDED_BEFORE_POLICY.has(record.denied_by))) return { kind: 'recorded', record };
  // decision-point.ts leaves out intersection_allowed and declared_arguments when the action's
  // stored argument declarations are damaged, and denies the call under any policy.
  if (record.intersection_allowed === undefined && record.denied_by === 'policy_error' && record.inputs?.resource !== undefined && record.inputs.declared_arguments === undefined) {
    return { kind: 'recorded', record };
  }
  if (record.intersection_allowed !== true) return { kind: 'unreplayable', reason: 'the entry does not record whether the roles and token scope allowed the call', record };

  const inputs = record.inputs;
  const missing = ['resource', 'resource_name', 'action', 'requires_approval', 'declared_arguments', 'arguments'].filter((name) => inputs?.[name as keyof typeof inputs] === undefined);
  if (inputs === undefined || missing.length > 0) return { kind: 'unreplayable', reason: `the entry was recorded without ${missing.join(', ')}`, record };
  if (inputs.user === undefined && inputs.agent === undefined) return { kind: 'unreplayable', reason: 'the entry names neither a person nor an agent', record };
  if ((inputs.arguments_truncated ?? []).length > 0) {
    return { kind: 'unreplayable', reason: `the audit log holds only the first 512 characters of the argument(s) ${(inputs.arguments_truncated ?? []).join(', ')}`, record };
  }
  const delegatingGranted = (inputs.delegating_agents ?? []).every((id) => (record.delegating_agent_roles?.[id] ?? []).length > 0);
  if ((inputs.user !== undefined && record.user_roles.length === 0) || (inputs.agent !== undefined && record.agent_roles.length === 0) || !delegatingGranted) {
    return { kind: 'unreplayable', reason: 'the entry records an allowed intersection without the roles that granted it', record };
  }

  return { kind: 'decide', record, request: replayDecisionRequest(record, inputs as typeof inputs & CompleteInputs) };
}

/**
 * Builds the request that decides a recorded call again. The roles that granted the action are
 * taken as recorded, because a policy change cannot change role grants. The request keeps the
 * recorded principals (with the agents that handed the token on), token scope, resource, action with its flag and declared types, method,
 * path, query and bound arguments, which is everything the policy step reads.
 */
export function replayDecisionRequest(record: RecordedDecision, inputs: NonNullable<RecordedDecision['inputs']> & CompleteInputs): DecisionRequest {
  const { resource, resource_name: resourceName, action, requires_approval: requiresApproval, declared_arguments: declarations, arguments: bound } = inputs;
  const grants = (roles: string[]): Permission[] => roles.map((role) => ({ role, resource, action }));
  return {
    person: inputs.user === undefined ? undefined : { id: inputs.user, permissions: grants(record.user_roles) },
    agent: inputs.agent === undefined ? undefined : { id: inputs.agent, permissions: grants(record.agent_roles) },
    delegatingAgents: (inputs.delegating_agents ?? []).map((id) => ({ id, permissions: grants(record.delegating_agent_roles?.[id] ?? []) })),
    tokenScope: inputs.token_scope,
    resource: { identifier: resource, name: resourceName },
    action: { name: action, requiresApproval, arguments: declarations },
    // The recorded arguments are those that passed the type check. A repeated or unreadable
    // argument was denied as argument_type, which is replayed as recorded above.
    context: { arguments: bound, method: inputs.method, path: inputs.path, query: inputs.query },
  };
}
