import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, type PolicySet } from '../../src/policy/cedar-compile.ts';
import { buildCedarSchema } from '../../src/policy/cedar-schema.ts';
import { decide, type DecisionRequest, type DecisionResult, type DeniedBy, type Party } from '../../src/policy/decision.ts';

const FILES = 'https://api.example.test/files';
const SCHEMA = buildCedarSchema([{ name: 'files', actions: [{ name: 'read', arguments: {} }, { name: 'delete', arguments: {} }] }]);

function compiled(source: string): PolicySet {
  const result = compilePolicy(source, 3, SCHEMA);
  if (!result.ok) throw new Error(`test policy does not compile: ${JSON.stringify(result.errors)}`);
  return result.policySet;
}

function party(id: string, actions: string[]): Party {
  return { id, permissions: actions.map((action) => ({ role: `${id}-role`, resource: FILES, action })) };
}

const PERSON = party('usr_alice', ['*']);
const SUB = party('agt_sub', ['*']);
const PARENT = party('agt_parent', ['*']);
const ROOT = party('agt_root', ['*']);

function request(delegatingAgents: Party[], action = 'read', options: { query?: string } = {}): DecisionRequest {
  return {
    person: PERSON,
    agent: SUB,
    delegatingAgents,
    tokenScope: ['read', 'delete'],
    resource: { identifier: FILES, name: 'files' },
    action: { name: action, requiresApproval: false, arguments: {} },
    context: { arguments: {}, method: 'GET', path: '/items', query: options.query },
  };
}

const NO_POLICY: PolicySet = { kind: 'none', version: 0 };

interface Case {
  name: string;
  request: DecisionRequest;
  policy: PolicySet;
  decision: DecisionResult;
  deniedBy?: DeniedBy;
}

const CASES: Case[] = [
  { name: 'no delegating agent allows', request: request([]), policy: NO_POLICY, decision: 'allow' },
  { name: 'parent granting the action allows', request: request([PARENT]), policy: NO_POLICY, decision: 'allow' },
  { name: 'parent without the action denies', request: request([party('agt_parent', ['delete'])]), policy: NO_POLICY, decision: 'deny', deniedBy: 'delegating_agent_roles' },
  { name: 'parent without roles denies', request: request([party('agt_parent', [])]), policy: NO_POLICY, decision: 'deny', deniedBy: 'delegating_agent_roles' },
  { name: 'earliest agent without the action denies', request: request([PARENT, party('agt_root', ['delete'])]), policy: NO_POLICY, decision: 'deny', deniedBy: 'delegating_agent_roles' },
  {
    name: 'forbid in parent denies sub-agent',
    request: request([PARENT]),
    policy: compiled('@id("no-parent") forbid(principal in Agent::"agt_parent", action, resource);'),
    decision: 'deny',
    deniedBy: 'policy',
  },
  {
    name: 'forbid in earliest agent denies',
    request: request([PARENT, ROOT]),
    policy: compiled('@id("no-root") forbid(principal in Agent::"agt_root", action, resource);'),
    decision: 'deny',
    deniedBy: 'policy',
  },
  {
    name: 'forbid == parent spares sub-agent',
    request: request([PARENT]),
    policy: compiled('forbid(principal == Agent::"agt_parent", action, resource);'),
    decision: 'allow',
  },
  {
    name: 'forbid on outside agent ignored',
    request: request([PARENT]),
    policy: compiled('forbid(principal in Agent::"agt_other", action, resource);'),
    decision: 'allow',
  },
  {
    name: 'approval forbid on other action allows',
    request: request([PARENT]),
    policy: compiled('@id("parent-needs-approval") @approval forbid(principal in Agent::"agt_parent", action == Action::"files/delete", resource);'),
    decision: 'allow',
  },
  {
    name: 'approval forbid in parent applies',
    request: request([PARENT], 'delete'),
    policy: compiled('@id("parent-needs-approval") @approval forbid(principal in Agent::"agt_parent", action == Action::"files/delete", resource);'),
    decision: 'approval_required',
  },
  {
    name: 'query denied by forbid on query',
    request: request([], 'read', { query: 'force=true' }),
    policy: compiled('@id("no-query") forbid(principal, action, resource) when { context has query };'),
    decision: 'deny',
    deniedBy: 'policy',
  },
  {
    name: 'no query passes forbid on query',
    request: request([]),
    policy: compiled('@id("no-query") forbid(principal, action, resource) when { context has query };'),
    decision: 'allow',
  },
];

describe('decide with chains and queries', () => {
  for (const item of CASES) {
    test(item.name, () => {
      const decision = decide(item.request, item.policy);
      assert.equal(decision.decision, item.decision, JSON.stringify(decision.reasons));
      assert.equal(decision.reasons.deniedBy, item.deniedBy);
    });
  }

  test('reasons list delegating agent roles', () => {
    const decision = decide(request([PARENT, party('agt_root', ['delete'])]), NO_POLICY);
    assert.deepEqual(decision.reasons.delegatingAgentRoles, { agt_parent: ['agt_parent-role'], agt_root: [] });
  });
});
