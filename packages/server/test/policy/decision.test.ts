import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, type PolicySet } from '../../src/policy/cedar-compile.ts';
import { buildCedarSchema, type SchemaResource } from '../../src/policy/cedar-schema.ts';
import { decide, type DecisionRequest, type DecisionResult, type DeniedBy } from '../../src/policy/decision.ts';
import type { ArgumentDeclarations } from '../../src/policy/arguments.ts';
import type { Permission } from '../../src/policy/permissions.ts';
import { jsonBodyArguments } from '../../src/policy/json-arguments.ts';

const PAY = 'https://api.example.test/pay';
const MAIL = 'https://mail.example.test/';

const PAY_ARGUMENTS: ArgumentDeclarations = { amount: 'Long', currency: 'String' };
const MAIL_ARGUMENTS: ArgumentDeclarations = { to: 'String', urgent: 'Boolean' };

/** The actions of the two test resources, as the gateway reads them from the database. */
const ACTIONS: Record<string, { resource: { identifier: string; name: string }; requiresApproval: boolean; arguments: ArgumentDeclarations }> = {
  pay: { resource: { identifier: PAY, name: 'payments' }, requiresApproval: false, arguments: PAY_ARGUMENTS },
  refund: { resource: { identifier: PAY, name: 'payments' }, requiresApproval: true, arguments: { amount: 'Long' } },
  'pay.read': { resource: { identifier: PAY, name: 'payments' }, requiresApproval: false, arguments: {} },
  'mail.send': { resource: { identifier: MAIL, name: 'mail' }, requiresApproval: false, arguments: MAIL_ARGUMENTS },
  'mail.read': { resource: { identifier: MAIL, name: 'mail' }, requiresApproval: false, arguments: {} },
};

const RESOURCES: SchemaResource[] = [
  { name: 'payments', actions: [{ name: 'pay', arguments: PAY_ARGUMENTS }, { name: 'refund', arguments: { amount: 'Long' } }, { name: 'pay.read', arguments: {} }] },
  { name: 'mail', actions: [{ name: 'mail.send', arguments: MAIL_ARGUMENTS }, { name: 'mail.read', arguments: {} }] },
];
const SCHEMA = buildCedarSchema(RESOURCES);

function compiled(source: string, version = 7, schema = SCHEMA): PolicySet {
  const result = compilePolicy(source, version, schema);
  if (!result.ok) throw new Error(`test policy does not compile: ${JSON.stringify(result.errors)}`);
  return result.policySet;
}

const NO_POLICY: PolicySet = { kind: 'none', version: 0 };

const BIG_PAYMENTS_FORBID = compiled(`
@id("big-payments")
forbid(principal, action == Action::"payments/pay", resource)
when { context.arguments has amount && context.arguments.amount > 1000 };
`);

const BIG_PAYMENTS_APPROVAL = compiled(`
@id("big-payments-approval")
@approval
forbid(principal, action == Action::"payments/pay", resource)
unless { context.arguments has amount && context.arguments.amount <= 1000 };
`);

const FORBID_AND_APPROVAL = compiled(`
@id("huge-payments")
forbid(principal, action == Action::"payments/pay", resource)
when { context.arguments has amount && context.arguments.amount > 100000 };

@id("big-payments-approval")
@approval
forbid(principal, action == Action::"payments/pay", resource)
unless { context.arguments has amount && context.arguments.amount <= 1000 };

@id("refund-approval")
@approval
forbid(principal, action == Action::"payments/refund", resource);
`);

const COMPANY_MAIL = compiled(`
@id("company-mail-only")
forbid(principal, action == Action::"mail/mail.send", resource)
unless { context.arguments has to && context.arguments.to like "*@example.com" };
`);

const PRINCIPALS_AND_CONTEXT = compiled(`
@id("no-rogue-agent")
forbid(principal == Agent::"agt_rogue", action, resource);

@id("no-bob-payments")
forbid(principal, action == Action::"payments/pay", resource)
when { context has person && context.person == Person::"usr_bob" };

@id("no-internal-path")
forbid(principal, action, resource)
when { context has path && context.path like "/payments/internal*" };

@id("no-mail-reads-by-person")
forbid(principal is Person, action == Action::"mail/mail.read", resource);
`);

/** Compiled with `amount` as a Long, then decided for an action that now declares it a String. */
const REDECLARED = compiled(
  `@id("big-payments")
forbid(principal, action == Action::"payments/pay", resource)
when { context.arguments has amount && context.arguments.amount > 1000 };`,
);

const INVALID: PolicySet = { kind: 'invalid', version: 9, errors: ['line 1, column 1: unrecognized action `Action::"gone/x"`'] };
const NOT_PREPARSED: PolicySet = { kind: 'cedar', version: 11, setId: 'mandate-never-preparsed', policyIds: ['x'], approvalPolicyIds: new Set() };

function grant(role: string, resource: string, action: string): Permission {
  return { role, resource, action };
}

const ALL_PAY = [grant('payer', PAY, '*')];
const ALL_MAIL = [grant('mailer', MAIL, '*')];
const BOTH = [...ALL_PAY, ...ALL_MAIL];

interface Case {
  name: string;
  action: string;
  person?: readonly Permission[] | null;
  agent?: readonly Permission[] | null;
  personId?: string;
  agentId?: string;
  /** Token scope; `null` means no token is involved. */
  scope?: string[] | null;
  arguments?: Record<string, unknown>;
  duplicates?: string[];
  /** The call's body is not a JSON object. */
  unreadable?: boolean;
  path?: string;
  policy?: PolicySet;
  /** Overrides the action's declared arguments. */
  declared?: ArgumentDeclarations;
  expect: DecisionResult;
  deniedBy?: DeniedBy;
  policies?: string[];
  approvalRequiredBy?: string[];
  userRoles?: string[];
  agentRoles?: string[];
  errorMatches?: RegExp;
  bound?: Record<string, unknown>;
}

function requestOf(item: Case): DecisionRequest {
  const action = ACTIONS[item.action];
  if (action === undefined) throw new Error(`unknown test action ${item.action}`);
  const person = item.person === undefined ? BOTH : item.person;
  const agent = item.agent === undefined ? BOTH : item.agent;
  const scope = item.scope === undefined ? Object.keys(ACTIONS) : item.scope;
  return {
    person: person === null ? undefined : { id: item.personId ?? 'usr_alice', permissions: person },
    agent: agent === null ? undefined : { id: item.agentId ?? 'agt_helper', permissions: agent },
    tokenScope: scope === null ? undefined : scope,
    resource: action.resource,
    action: { name: item.action, requiresApproval: action.requiresApproval, arguments: item.declared ?? action.arguments },
    context: { arguments: item.arguments, duplicateArguments: item.duplicates, unreadableBody: item.unreadable, method: 'POST', path: item.path ?? '/payments' },
  };
}

const CASES: Case[] = [
  // Intersection: agent ∩ person ∩ token scope, default deny.
  { name: 'both grant exactly', action: 'pay', person: [grant('payer', PAY, 'pay')], agent: [grant('bot', PAY, 'pay')], expect: 'allow', userRoles: ['payer'], agentRoles: ['bot'] },
  { name: 'agent broader than person', action: 'pay', person: [grant('reader', PAY, 'pay.read')], agent: ALL_PAY, expect: 'deny', deniedBy: 'user_roles', agentRoles: ['payer'], userRoles: [] },
  { name: 'person broader than agent', action: 'pay', person: ALL_PAY, agent: [grant('reader', PAY, 'pay.read')], expect: 'deny', deniedBy: 'agent_roles', userRoles: ['payer'], agentRoles: [] },
  { name: 'agent broader, action in both', action: 'pay.read', person: [grant('reader', PAY, 'pay.read')], agent: ALL_PAY, expect: 'allow', userRoles: ['reader'], agentRoles: ['payer'] },
  { name: 'neither grants', action: 'pay', person: ALL_MAIL, agent: ALL_MAIL, expect: 'deny', deniedBy: 'agent_roles' },
  { name: 'both grant, token lacks scope', action: 'pay', scope: ['pay.read'], expect: 'deny', deniedBy: 'token_scope' },
  { name: 'empty token scope', action: 'pay.read', scope: [], expect: 'deny', deniedBy: 'token_scope' },
  { name: 'no token involved', action: 'pay', scope: null, expect: 'allow' },
  { name: 'agent alone, granted', action: 'pay', person: null, expect: 'allow', agentRoles: ['payer'], userRoles: [] },
  { name: 'person alone, not granted', action: 'pay', agent: null, person: ALL_MAIL, expect: 'deny', deniedBy: 'user_roles' },
  { name: 'no principal at all', action: 'pay', person: null, agent: null, expect: 'deny', deniedBy: 'principal_missing' },
  { name: 'person without roles', action: 'pay.read', person: [], expect: 'deny', deniedBy: 'user_roles' },
  { name: 'roles listed once, sorted', action: 'pay', person: [grant('zeta', PAY, 'pay'), grant('alpha', '*', '*'), grant('zeta', PAY, '*')], expect: 'allow', userRoles: ['alpha', 'zeta'] },

  // Wildcards.
  { name: 'wildcard resource and action', action: 'mail.send', person: [grant('admin', '*', '*')], agent: [grant('admin', '*', '*')], expect: 'allow', userRoles: ['admin'] },
  { name: 'action prefix wildcard grants', action: 'mail.send', person: [grant('mail-all', MAIL, 'mail.*')], expect: 'allow', userRoles: ['mail-all'] },
  { name: 'action prefix wildcard is a prefix only', action: 'pay', person: [grant('pay-read', PAY, 'pay.*')], expect: 'deny', deniedBy: 'user_roles' },
  { name: 'wildcard resource, exact action', action: 'mail.read', person: [grant('reader', '*', 'mail.read')], expect: 'allow' },
  { name: 'wildcard resource, other action', action: 'mail.send', person: [grant('reader', '*', 'mail.read')], expect: 'deny', deniedBy: 'user_roles' },
  { name: 'role for another resource', action: 'pay', agent: ALL_MAIL, expect: 'deny', deniedBy: 'agent_roles' },

  // Conditions on arguments, forbid over permit, forbid over approval.
  { name: 'forbid above 1000 denies 5000', action: 'pay', policy: BIG_PAYMENTS_FORBID, arguments: { amount: 5000, currency: 'EUR' }, expect: 'deny', deniedBy: 'policy', policies: ['big-payments'], bound: { amount: 5000, currency: 'EUR' } },
  { name: 'forbid above 1000 allows 1000', action: 'pay', policy: BIG_PAYMENTS_FORBID, arguments: { amount: 1000 }, expect: 'allow', bound: { amount: 1000 } },
  { name: 'approval above 1000 for 5000', action: 'pay', policy: BIG_PAYMENTS_APPROVAL, arguments: { amount: 5000 }, expect: 'approval_required', policies: ['big-payments-approval'], approvalRequiredBy: ['big-payments-approval'] },
  { name: 'approval when amount is absent', action: 'pay', policy: BIG_PAYMENTS_APPROVAL, arguments: { currency: 'EUR' }, expect: 'approval_required', approvalRequiredBy: ['big-payments-approval'] },
  { name: 'no approval for 999', action: 'pay', policy: BIG_PAYMENTS_APPROVAL, arguments: { amount: 999 }, expect: 'allow', approvalRequiredBy: [] },
  { name: 'plain forbid beats approval', action: 'pay', policy: FORBID_AND_APPROVAL, arguments: { amount: 200000 }, expect: 'deny', deniedBy: 'policy', policies: ['huge-payments'] },
  { name: 'approval policy and action flag', action: 'refund', policy: FORBID_AND_APPROVAL, arguments: { amount: 5 }, expect: 'approval_required', approvalRequiredBy: ['refund-approval', 'requires_approval'] },
  { name: 'action flag alone', action: 'refund', expect: 'approval_required', approvalRequiredBy: ['requires_approval'], policies: [] },
  { name: 'mail to the company domain', action: 'mail.send', policy: COMPANY_MAIL, arguments: { to: 'bob@example.com', urgent: true }, expect: 'allow', bound: { to: 'bob@example.com', urgent: true } },
  { name: 'mail to another domain', action: 'mail.send', policy: COMPANY_MAIL, arguments: { to: 'eve@example.com.evil.test' }, expect: 'deny', deniedBy: 'policy', policies: ['company-mail-only'] },
  { name: 'mail without recipient', action: 'mail.send', policy: COMPANY_MAIL, arguments: {}, expect: 'deny', deniedBy: 'policy' },
  { name: 'mail without any arguments', action: 'mail.send', policy: COMPANY_MAIL, expect: 'deny', deniedBy: 'policy' },
  { name: 'forbid on one agent', action: 'mail.read', policy: PRINCIPALS_AND_CONTEXT, agentId: 'agt_rogue', expect: 'deny', deniedBy: 'policy', policies: ['no-rogue-agent'] },
  { name: 'other agent unaffected', action: 'mail.read', policy: PRINCIPALS_AND_CONTEXT, agentId: 'agt_helper', path: '/mail', expect: 'allow' },
  { name: 'forbid on the person behind the agent', action: 'pay', policy: PRINCIPALS_AND_CONTEXT, personId: 'usr_bob', expect: 'deny', deniedBy: 'policy', policies: ['no-bob-payments'] },
  { name: 'forbid on the path', action: 'pay', policy: PRINCIPALS_AND_CONTEXT, path: '/payments/internal/7', expect: 'deny', deniedBy: 'policy', policies: ['no-internal-path'] },
  { name: 'person principal without agent', action: 'mail.read', policy: PRINCIPALS_AND_CONTEXT, agent: null, path: '/mail', expect: 'deny', deniedBy: 'policy', policies: ['no-mail-reads-by-person'] },
  { name: 'intersection before policy', action: 'pay', policy: BIG_PAYMENTS_APPROVAL, person: ALL_MAIL, arguments: { amount: 5000 }, expect: 'deny', deniedBy: 'user_roles', policies: [] },

  // Declared argument types: a wrong type denies, undeclared members are ignored.
  { name: 'unreadable body, declared arguments', action: 'pay', policy: BIG_PAYMENTS_FORBID, unreadable: true, expect: 'deny', deniedBy: 'argument_type', errorMatches: /must be a UTF-8 JSON object/ },
  { name: 'unreadable body, no declared arguments', action: 'pay.read', unreadable: true, expect: 'allow' },
  { name: 'amount beside AMOUNT', action: 'pay', policy: BIG_PAYMENTS_FORBID, arguments: { amount: 500, AMOUNT: 500000 }, expect: 'deny', deniedBy: 'argument_type', errorMatches: /also occurs as "AMOUNT"/ },
  { name: 'only a case variant of amount', action: 'pay', policy: BIG_PAYMENTS_FORBID, arguments: { Amount: 500000 }, expect: 'deny', deniedBy: 'argument_type', errorMatches: /also occurs as "Amount"/ },
  { name: 'amount beside amount NUL', action: 'pay', policy: BIG_PAYMENTS_FORBID, arguments: { amount: 500, 'amount\u0000': 500000 }, expect: 'deny', deniedBy: 'argument_type', errorMatches: /also occurs as "amount\\u0000"/ },
  { name: 'amount beside full-width amount', action: 'pay', policy: BIG_PAYMENTS_FORBID, arguments: { amount: 500, '\uff41mount': 500000 }, expect: 'deny', deniedBy: 'argument_type', errorMatches: /also occurs as "\uff41mount"/ },
  { name: 'amount beside amount with space', action: 'pay', policy: BIG_PAYMENTS_FORBID, arguments: { amount: 500, 'amount ': 500000 }, expect: 'deny', deniedBy: 'argument_type', errorMatches: /also occurs as "amount "/ },
  { name: 'string argument with NUL', action: 'mail.send', policy: COMPANY_MAIL, arguments: { to: 'evil@evil.test\u0000@example.com' }, expect: 'deny', deniedBy: 'argument_type', errorMatches: /argument to contains a control character/ },
  { name: 'amount as a string', action: 'pay', policy: BIG_PAYMENTS_FORBID, arguments: { amount: '5000' }, expect: 'deny', deniedBy: 'argument_type', errorMatches: /argument amount must be a JSON integer/ },
  { name: 'amount with a fraction', action: 'pay', arguments: { amount: 10.5 }, expect: 'deny', deniedBy: 'argument_type', errorMatches: /not an integer/ },
  { name: 'amount beyond 2^53', action: 'pay', arguments: { amount: 2 ** 53 }, expect: 'deny', deniedBy: 'argument_type', errorMatches: /outside that range/ },
  { name: 'amount null', action: 'pay', arguments: { amount: null }, expect: 'deny', deniedBy: 'argument_type', errorMatches: /not null/ },
  { name: 'boolean as a string', action: 'mail.send', arguments: { to: 'bob@example.com', urgent: 'true' }, expect: 'deny', deniedBy: 'argument_type', errorMatches: /argument urgent must be a JSON boolean/ },
  { name: 'duplicated declared argument', action: 'pay', policy: BIG_PAYMENTS_FORBID, arguments: { amount: 5 }, duplicates: ['amount'], expect: 'deny', deniedBy: 'argument_type', errorMatches: /amount occurs more than once/ },
  { name: 'duplicated undeclared member', action: 'pay', arguments: { amount: 5, memo: 'x' }, duplicates: ['memo'], expect: 'allow', bound: { amount: 5 } },
  { name: 'undeclared members ignored', action: 'pay', policy: BIG_PAYMENTS_FORBID, arguments: { amount: 5, memo: { nested: [1, 2] }, note: 'hi' }, expect: 'allow', bound: { amount: 5 } },

  // Policy errors fail closed.
  { name: 'invalid stored policy', action: 'pay.read', policy: INVALID, expect: 'deny', deniedBy: 'policy_error', errorMatches: /unrecognized action/ },
  { name: 'invalid policy after intersection', action: 'pay.read', policy: INVALID, person: ALL_MAIL, expect: 'deny', deniedBy: 'user_roles' },
  { name: 'evaluation error denies', action: 'pay', policy: REDECLARED, declared: { amount: 'String' }, arguments: { amount: 'lots' }, expect: 'deny', deniedBy: 'policy_error', errorMatches: /policy big-payments/ },
  { name: 'policy set not preparsed', action: 'pay.read', policy: NOT_PREPARSED, expect: 'deny', deniedBy: 'policy_error', errorMatches: /not found/ },
];

describe('decide', () => {
  for (const item of CASES) {
    test(item.name, () => {
      const policy = item.policy ?? NO_POLICY;
      const decision = decide(requestOf(item), policy);

      assert.equal(decision.decision, item.expect);
      assert.equal(decision.reasons.deniedBy, item.deniedBy);
      assert.equal(decision.policyVersion, policy.version);
      if (item.policies !== undefined) assert.deepEqual(decision.reasons.policies, item.policies);
      if (item.approvalRequiredBy !== undefined) assert.deepEqual(decision.reasons.approvalRequiredBy, item.approvalRequiredBy);
      if (item.userRoles !== undefined) assert.deepEqual(decision.reasons.userRoles, item.userRoles);
      if (item.agentRoles !== undefined) assert.deepEqual(decision.reasons.agentRoles, item.agentRoles);
      if (item.errorMatches !== undefined) assert.match(decision.reasons.errors.join('\n'), item.errorMatches);
      if (item.bound !== undefined) assert.deepEqual(decision.boundArguments, item.bound);
      if (item.expect !== 'deny') assert.deepEqual(decision.reasons.errors, []);
    });
  }

  test('same input, same decision', () => {
    const item = CASES.find((candidate) => candidate.name === 'plain forbid beats approval');
    assert.ok(item);
    const first = decide(requestOf(item), item.policy ?? NO_POLICY);
    const second = decide(requestOf(item), item.policy ?? NO_POLICY);
    assert.deepEqual(second, first);
  });

  test('request of another shape denies', () => {
    const broken = { ...requestOf(CASES[0] as Case), action: undefined } as unknown as DecisionRequest;
    const decision = decide(broken, NO_POLICY);
    assert.equal(decision.decision, 'deny');
    assert.equal(decision.reasons.deniedBy, 'policy_error');
    assert.match(decision.reasons.errors.join(), /The decision failed/);
  });
});

describe('compilePolicy', () => {
  const failures: Array<{ name: string; source: string; message: RegExp; line?: number }> = [
    { name: 'syntax error', source: 'forbid(principal, action, resource)\nwhen { context.arguments. };', message: /unexpected token|parse/i, line: 2 },
    { name: 'unknown action', source: 'forbid(principal, action == Action::"payments/steal", resource);', message: /unrecognized action `Action::"payments\/steal"`/ },
    { name: 'argument read without has', source: '@id("p")\nforbid(principal, action == Action::"payments/pay", resource)\nwhen { context.arguments.amount > 1000 };', message: /for policy `p`, unable to guarantee safety of access to optional attribute `arguments.amount`/, line: 3 },
    { name: 'argument of the wrong type', source: 'forbid(principal, action == Action::"payments/pay", resource)\nwhen { context.arguments has amount && context.arguments.amount like "1*" };', message: /expected String but saw Long|unexpected type/ },
    { name: 'undeclared argument without has', source: 'forbid(principal, action == Action::"payments/pay", resource)\nwhen { context.arguments.iban == "x" };', message: /iban/ },
    { name: 'unknown entity type', source: 'forbid(principal == Robot::"r2", action, resource);', message: /Robot/ },
    { name: 'approval on a permit', source: '@id("p")\n@approval\npermit(principal, action, resource);', message: /@approval but is a permit/, line: 1 },
    { name: 'duplicate ids', source: '@id("same")\nforbid(principal, action, resource) when { context has path };\n@id("same")\nforbid(principal, action, resource) when { context has method };', message: /used twice/, line: 3 },
    { name: 'reserved id', source: '@id("mandate.base-permit")\nforbid(principal, action, resource) when { context has path };', message: /reserved/ },
    { name: 'template', source: 'forbid(principal == ?principal, action, resource);', message: /templates/ },
  ];
  for (const failure of failures) {
    test(`rejects ${failure.name}`, () => {
      const result = compilePolicy(failure.source, 1, SCHEMA);
      assert.equal(result.ok, false);
      if (result.ok) return;
      assert.match(result.errors.map((error) => error.message).join('\n'), failure.message);
      if (failure.line !== undefined) assert.equal(result.errors[0]?.line, failure.line);
    });
  }

  test('warns of a condition that never holds', () => {
    // Strict validation types `has` on an undeclared argument as false, so the forbid can never apply.
    const result = compilePolicy('forbid(principal, action == Action::"payments/pay", resource)\nwhen { context.arguments has iban };', 2, SCHEMA);
    assert.ok(result.ok);
    assert.match(result.warnings.map((warning) => warning.message).join('\n'), /policy is impossible/);
  });

  test('empty and comment-only policies have no conditions', () => {
    for (const source of ['', '   \n', '// nothing yet\n']) {
      const result = compilePolicy(source, 4, SCHEMA);
      assert.deepEqual(result, { ok: true, policySet: { kind: 'none', version: 4 }, warnings: [] }, JSON.stringify(source));
    }
  });

  test('names policies by @id or position', () => {
    const result = compilePolicy('forbid(principal, action, resource) when { context has path };\n@id("second")\n@approval\nforbid(principal, action, resource) when { context has method };', 3, SCHEMA);
    assert.ok(result.ok);
    assert.equal(result.policySet.kind, 'cedar');
    if (result.policySet.kind !== 'cedar') return;
    assert.deepEqual(result.policySet.policyIds, ['policy0', 'second']);
    assert.deepEqual([...result.policySet.approvalPolicyIds], ['second']);
  });
});

describe('jsonBodyArguments', () => {
  const cases: Array<{ name: string; contentType: string | undefined; body: string | Buffer; values?: Record<string, unknown>; duplicates?: string[]; unreadable?: boolean }> = [
    { name: 'JSON object', contentType: 'application/json', body: '{"amount":5,"to":"a@example.com"}', values: { amount: 5, to: 'a@example.com' }, duplicates: [] },
    { name: '+json type with parameters', contentType: 'Application/Problem+JSON; charset=utf-8', body: '{"a":true}', values: { a: true }, duplicates: [] },
    { name: 'byte order mark refused', contentType: 'application/json', body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"amount":7}')]), unreadable: true },
    { name: 'duplicate member', contentType: 'application/json', body: '{"amount":5,"currency":"EUR","amount":5000}', values: { amount: 5000, currency: 'EUR' }, duplicates: ['amount'] },
    { name: 'duplicate by escape', contentType: 'application/json', body: '{"amount":5,"am\\u006funt":5000}', duplicates: ['amount'] },
    { name: 'nested repeats ignored', contentType: 'application/json', body: '{"memo":{"x":1,"x":2},"list":[{"y":1},{"y":2}],"amount":3}', values: { memo: { x: 2 }, list: [{ y: 1 }, { y: 2 }], amount: 3 }, duplicates: [] },
    { name: 'quotes and braces in strings', contentType: 'application/json', body: '{"note":"a \\"quoted\\" {brace}, \\\\","amount":1,"note2":"amount"}', duplicates: [] },
    { name: 'text/plain body', contentType: 'text/plain', body: '{"amount":5}', unreadable: true },
    { name: 'no content type', contentType: undefined, body: '{"amount":5}', unreadable: true },
    { name: 'json lookalike type', contentType: 'application/jsonp', body: '{"amount":5}', unreadable: true },
    { name: 'unparsable JSON', contentType: 'application/json', body: '{"amount":5', unreadable: true },
    { name: 'invalid UTF-8', contentType: 'application/json', body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), unreadable: true },
    { name: 'top-level array', contentType: 'application/json', body: '[{"amount":5}]', unreadable: true },
    { name: 'top-level string', contentType: 'application/json', body: '"amount"', unreadable: true },
    { name: 'empty body', contentType: 'application/json', body: '' },
  ];
  for (const item of cases) {
    test(item.name, () => {
      const read = jsonBodyArguments(item.contentType, Buffer.isBuffer(item.body) ? item.body : Buffer.from(item.body));
      assert.equal(read.unreadable === true, item.unreadable === true, 'unreadable');
      if (item.duplicates === undefined) {
        assert.equal(read.values, undefined);
        assert.deepEqual(read.duplicateNames, []);
        return;
      }
      assert.notEqual(read.values, undefined);
      if (item.values !== undefined) assert.deepEqual(read.values, item.values);
      assert.deepEqual(read.duplicateNames, item.duplicates);
    });
  }
});
