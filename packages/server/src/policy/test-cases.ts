import { compilePolicy, type CompileResult, type PolicySet } from './cedar-compile.ts';
import { buildCedarSchema } from './cedar-schema.ts';
import { decide, type Decision } from './decision.ts';
import type { ExpectedDecision, ResolvedCase, TestResource } from './test-cases-file.ts';

/** The result of one case: what `decide` returned, and whether it is what the case expects. */
export interface CaseOutcome {
  name: string;
  expected: ExpectedDecision;
  actual: Decision;
  matches: boolean;
}

/**
 * Compiles the policy under test as Mandate compiles a saved one, but against the schema built
 * from the test file's resources, so the tests need no database.
 */
export function compileTestPolicy(source: string, version: number, resources: readonly TestResource[]): CompileResult {
  const schema = buildCedarSchema(resources.map((resource) => ({ name: resource.name, actions: resource.actions.map((action) => ({ name: action.name, arguments: action.arguments })) })));
  return compilePolicy(source, version, schema);
}

/** Decides each case with `decide`, as the gateway would with the same roles, token and call. */
export function runTestCases(cases: readonly ResolvedCase[], policySet: PolicySet): CaseOutcome[] {
  return cases.map((testCase) => {
    const actual = decide(
      {
        person: testCase.person,
        agent: testCase.agent,
        delegatingAgents: testCase.delegatingAgents,
        tokenScope: testCase.tokenScope,
        resource: { identifier: testCase.resource.identifier, name: testCase.resource.name },
        action: { name: testCase.action.name, requiresApproval: testCase.action.requiresApproval, arguments: testCase.action.arguments },
        context: { arguments: testCase.arguments, method: testCase.method, path: testCase.path, query: testCase.query },
      },
      policySet,
    );
    return { name: testCase.name, expected: testCase.expect, actual, matches: matchesExpectation(testCase.expect, actual) };
  });
}

/**
 * Compares the result, and `denied_by` and the determining policy ids when the case names
 * them. Policy ids are compared as a set.
 */
function matchesExpectation(expected: ExpectedDecision, actual: Decision): boolean {
  if (expected.decision !== actual.decision) return false;
  if (expected.denied_by !== undefined && expected.denied_by !== actual.reasons.deniedBy) return false;
  if (expected.policies !== undefined && !sameSet(expected.policies, actual.reasons.policies)) return false;
  return true;
}

function sameSet(left: readonly string[], right: readonly string[]): boolean {
  const sorted = (list: readonly string[]) => JSON.stringify([...new Set(list)].sort());
  return sorted(left) === sorted(right);
}

/** Formats an expectation for the report: `deny (denied_by policy; policies a, b)`. */
export function describeExpectation(expected: ExpectedDecision): string {
  const details: string[] = [];
  if (expected.denied_by !== undefined) details.push(`denied_by ${expected.denied_by}`);
  if (expected.policies !== undefined) details.push(`policies ${list(expected.policies)}`);
  return details.length === 0 ? expected.decision : `${expected.decision} (${details.join('; ')})`;
}

/** Formats a decision with its reasons: the party or check that denied, policies, approvals, roles and errors. */
export function describeDecision(decision: Decision): string {
  const { reasons } = decision;
  const details: string[] = [];
  if (reasons.deniedBy !== undefined) details.push(`denied_by ${reasons.deniedBy}`);
  if (reasons.policies.length > 0) details.push(`policies ${list(reasons.policies)}`);
  if (reasons.approvalRequiredBy.length > 0) details.push(`approval_required_by ${list(reasons.approvalRequiredBy)}`);
  details.push(`person roles ${list(reasons.userRoles)}`, `agent roles ${list(reasons.agentRoles)}`);
  for (const [agentId, roles] of Object.entries(reasons.delegatingAgentRoles ?? {})) details.push(`roles of delegating agent ${agentId} ${list(roles)}`);
  if (reasons.errors.length > 0) details.push(`errors: ${reasons.errors.join(' | ')}`);
  return `${decision.decision} (${details.join('; ')})`;
}

function list(items: readonly string[]): string {
  return items.length === 0 ? '-' : items.join(', ');
}
