import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, type CompileResult, type PolicySet } from '../../src/policy/cedar-compile.ts';
import { evaluateCedar } from '../../src/policy/cedar-evaluate.ts';
import { buildCedarSchema } from '../../src/policy/cedar-schema.ts';
import { MAX_NESTING_DEPTH, MAX_STEPS_PER_POLICY } from '../../src/policy/policy-depth.ts';

const SCHEMA = buildCedarSchema([{ name: 'payments', actions: [{ name: 'pay', arguments: { amount: 'Long' } }] }]);
const HAS_AMOUNT = 'context.arguments has amount';
const REFERENCE = 'forbid(principal, action, resource) when { context.arguments has amount && context.arguments.amount > 1000 };';

/** Steps that `forbidWhen` adds around its condition: `(` of the scope, `when` and `{`. */
const FORBID_WHEN_STEPS = 3;

function forbidWhen(condition: string): string {
  return `forbid(principal, action, resource) when { ${condition} };`;
}

/** Returns a condition in `depth` parentheses. With the policy's own `{`, the text nests depth + 1 deep. */
function parenthesized(depth: number): string {
  return `${'('.repeat(depth)}${HAS_AMOUNT}${')'.repeat(depth)}`;
}

/** Returns a condition with `count` operators: `true` joined by `&&`. */
function chain(count: number): string {
  return Array.from({ length: count + 1 }, () => 'true').join(' && ');
}

function compile(source: string, version = 1): CompileResult {
  return compilePolicy(source, version, SCHEMA);
}

function cedarSet(result: CompileResult): Extract<PolicySet, { kind: 'cedar' }> {
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.policySet.kind, 'cedar');
  return result.policySet as Extract<PolicySet, { kind: 'cedar' }>;
}

function decisionFor(policySet: Extract<PolicySet, { kind: 'cedar' }>, amount: number): string {
  return evaluateCedar(policySet, { agentId: 'agent', personId: 'person', resourceIdentifier: 'urn:payments', resourceName: 'payments', actionName: 'pay', arguments: { amount } }).kind;
}

/** Checks that cedar-wasm still compiles and decides, which a stack overflow inside it would break. */
function assertCedarWorks(): void {
  const reference = cedarSet(compile(REFERENCE, 99));
  assert.equal(decisionFor(reference, 5), 'allow');
  assert.equal(decisionFor(reference, 5000), 'forbid');
}

test('nesting at the limit compiles', () => {
  const policySet = cedarSet(compile(forbidWhen(parenthesized(MAX_NESTING_DEPTH - 1))));
  assert.equal(decisionFor(policySet, 5), 'forbid');
});

test('nesting over the limit is rejected', () => {
  const result = compile(`// nested\n${forbidWhen(parenthesized(MAX_NESTING_DEPTH))}`);
  assert.equal(result.ok, false);
  assert.ok(!result.ok);
  assert.match(result.errors[0]?.message ?? '', /nests more than 32 brackets deep/);
  assert.equal(result.errors[0]?.line, 2);
  // `forbid(` opens the first bracket and closes it again; the condition's `(` start at column 44.
  assert.equal(result.errors[0]?.column, 44 + MAX_NESTING_DEPTH - 1, 'the column of the bracket over the limit');
});

test('steps at the limit compile', () => {
  const policySet = cedarSet(compile(forbidWhen(chain(MAX_STEPS_PER_POLICY - FORBID_WHEN_STEPS))));
  assert.equal(decisionFor(policySet, 5), 'forbid');
});

test('steps over the limit are rejected', () => {
  const result = compile(forbidWhen(chain(MAX_STEPS_PER_POLICY - FORBID_WHEN_STEPS + 1)));
  assert.ok(!result.ok);
  assert.match(result.errors[0]?.message ?? '', /more than 128 operators, brackets and clauses\. Split its conditions into several policies\./);
});

test('limits count per policy', () => {
  // One step less, for the `(` of the second policy's @id annotation.
  const nearLimit = forbidWhen(chain(MAX_STEPS_PER_POLICY - FORBID_WHEN_STEPS - 1));
  const policySet = cedarSet(compile(`${nearLimit}\n${nearLimit.replace('forbid(', '@id("second")\nforbid(')}`));
  assert.equal(policySet.policyIds.length, 2);
});

test('strings and comments are not counted', () => {
  const brackets = '('.repeat(200);
  const operators = ' && '.repeat(200);
  const source = `// ${brackets}${operators}\nforbid(principal, action, resource) when { context has path && context.path like "*${brackets}\\"${operators}*" };`;
  cedarSet(compile(source));
});

test('comment ends at a carriage return', () => {
  // Cedar ends a comment at \r as well as \n, so the nesting after `// x\r` is read by Cedar.
  const result = compile(`forbid(principal, action, resource) when { // x\r${parenthesized(200)}\n};`);
  assert.ok(!result.ok);
  assert.match(result.errors[0]?.message ?? '', /nests more than 32 brackets deep/);
  assertCedarWorks();
});

test('overflowing policies leave Cedar working', () => {
  // Each of these overflowed cedar-wasm's stack and broke it for the rest of the process.
  const overflowing = [
    forbidWhen(parenthesized(300)),
    forbidWhen(chain(800)),
    forbidWhen(`${'['.repeat(200)}1${']'.repeat(200)}.contains(1)`),
    forbidWhen(`${'{a:'.repeat(200)}1${'}'.repeat(200)} has a`),
    forbidWhen(`${'if true then '.repeat(400)}true${' else false'.repeat(400)}`),
    forbidWhen(`${Array.from({ length: 400 }, () => '1').join(' + ')} > 0`),
    forbidWhen(`context${'["a"]'.repeat(2000)}`),
    // This one compiled, and the first evaluation overflowed.
    `forbid(principal, action, resource)${' unless {false}'.repeat(400)};`,
  ];
  for (const source of overflowing) {
    const result = compile(source);
    assert.equal(result.ok, false, source.slice(0, 60));
    assertCedarWorks();
  }
});
