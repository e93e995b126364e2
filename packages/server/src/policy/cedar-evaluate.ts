import { statefulIsAuthorized, type Context, type EntityJson, type EntityUidJson } from './cedar-wasm.ts';
import type { ArgumentValue } from './arguments.ts';
import type { PolicySet } from './cedar-compile.ts';
import { AGENT_TYPE, PERSON_TYPE, RESOURCE_TYPE, cedarActionId } from './cedar-schema.ts';

/** One Cedar authorization request in Mandate's model. */
export interface CedarRequest {
  /** The agent's client_id; the agent is the principal when it acts. */
  agentId?: string | undefined;
  /**
   * The agents that handed the token on to the agent, the nearest first. Each is a parent of the
   * one after it in the entity hierarchy, so `principal in Agent::"a1"` matches a1's sub-agents.
   */
  delegatingAgentIds?: readonly string[] | undefined;
  /** The person's user id. It is the principal when no agent acts, and `context.person` always. */
  personId?: string | undefined;
  resourceIdentifier: string;
  resourceName: string;
  actionName: string;
  arguments: Readonly<Record<string, ArgumentValue>>;
  method?: string | undefined;
  path?: string | undefined;
  query?: string | undefined;
}

/** Cedar's conclusion: no objection, a deny by plain forbids, an approval forbid, or an error. */
export type CedarOutcome =
  | { kind: 'allow' }
  | { kind: 'forbid'; policies: string[] }
  | { kind: 'approval'; policies: string[] }
  | { kind: 'error'; errors: string[] };

/**
 * Evaluates a compiled policy set for one request. A forbid without `@approval` wins over one
 * with it. Cedar skips a policy whose condition raises an error and decides without it, which
 * would let a failing `forbid` through, so any error at all is returned as an error outcome.
 */
export function evaluateCedar(policySet: Extract<PolicySet, { kind: 'cedar' }>, request: CedarRequest): CedarOutcome {
  const entities: EntityJson[] = [{ uid: { type: RESOURCE_TYPE, id: request.resourceIdentifier }, attrs: { name: request.resourceName }, parents: [] }];
  let principal: EntityUidJson;
  if (request.agentId !== undefined) {
    principal = { type: AGENT_TYPE, id: request.agentId };
    entities.push(...agentEntities([request.agentId, ...(request.delegatingAgentIds ?? [])]));
  } else if (request.personId !== undefined) {
    principal = { type: PERSON_TYPE, id: request.personId };
  } else {
    return { kind: 'error', errors: ['The request names neither an agent nor a person.'] };
  }

  const context: Context = { arguments: { ...request.arguments } };
  if (request.personId !== undefined) {
    context.person = { __entity: { type: PERSON_TYPE, id: request.personId } };
    entities.push({ uid: { type: PERSON_TYPE, id: request.personId }, attrs: {}, parents: [] });
  }
  if (request.method !== undefined) context.method = request.method;
  if (request.path !== undefined) context.path = request.path;
  if (request.query !== undefined) context.query = request.query;

  const answer = statefulIsAuthorized({
    principal,
    action: { type: 'Action', id: cedarActionId(request.resourceName, request.actionName) },
    resource: { type: RESOURCE_TYPE, id: request.resourceIdentifier },
    context,
    entities,
    preparsedPolicySetId: policySet.setId,
  });
  if (answer.type === 'failure') return { kind: 'error', errors: answer.errors.map((error) => error.message) };

  const { decision, diagnostics } = answer.response;
  if (diagnostics.errors.length > 0) return { kind: 'error', errors: diagnostics.errors.map((item) => `policy ${item.policyId}: ${item.error.message}`) };
  if (decision === 'allow') return { kind: 'allow' };

  const determining = [...diagnostics.reason].sort();
  if (determining.length === 0) return { kind: 'error', errors: ['Cedar denied the request without naming a policy.'] };
  const plain = determining.filter((id) => !policySet.approvalPolicyIds.has(id));
  return plain.length > 0 ? { kind: 'forbid', policies: plain } : { kind: 'approval', policies: determining };
}

/** Builds the entities of the acting agent and of the agents that handed it the token, each a child of the next. */
function agentEntities(chain: readonly string[]): EntityJson[] {
  return chain.map((id, index) => {
    const parent = chain[index + 1];
    return { uid: { type: AGENT_TYPE, id }, attrs: {}, parents: parent === undefined ? [] : [{ type: AGENT_TYPE, id: parent }] };
  });
}
