import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { createCliEnvironment, runCli, type CliEnvironment, type CliRun } from '../cli/cli-runner.ts';

const PAY = 'https://payments.example.test/';
const MAIL = 'https://mail.example.test/';

const POLICY = `@id("payments-above-1000")
@approval
forbid(principal, action == Action::"payments/pay", resource)
unless { context.arguments has amount && context.arguments.amount <= 1000 };

@id("never-above-100000")
forbid(principal, action == Action::"payments/pay", resource)
when { context.arguments has amount && context.arguments.amount > 100000 };

@id("company-mail-only")
forbid(principal, action == Action::"mail/send", resource)
unless { context.arguments has to && context.arguments.to like "*@example.com" };

@id("no-internal-payments-by-agents")
forbid(principal is Agent, action == Action::"payments/pay", resource)
when { context has path && context.path like "/payments/internal*" };

@id("no-bob-mail")
forbid(principal, action == Action::"mail/send", resource)
when { context has person && context.person == Person::"usr_bob" };
`;

const RESOURCES = [
  {
    identifier: PAY,
    name: 'payments',
    actions: [
      { name: 'pay', arguments: { amount: 'Long', currency: 'String' } },
      { name: 'refund', requires_approval: true, arguments: { amount: 'Long' } },
    ],
  },
  { identifier: MAIL, name: 'mail', actions: [{ name: 'send', arguments: { to: 'String', urgent: 'Boolean' } }, { name: 'read' }] },
];

const ROLES = { payer: [`${PAY} *`], 'mail-user': [`${MAIL} *`], 'pay-agent': [`${PAY} pay`, `${MAIL} *`], 'refund-agent': ['* refund'] };

/** One case per input of the file: each expectation holds only because that input reached `decide`. */
const CASES = [
  { name: 'small payment', arguments: { amount: 500, currency: 'EUR' }, expect: { decision: 'allow' } },
  { name: 'big payment', arguments: { amount: 5000 }, expect: { decision: 'approval_required', policies: ['payments-above-1000'] } },
  { name: 'huge payment', arguments: { amount: 500000 }, expect: { decision: 'deny', denied_by: 'policy', policies: ['never-above-100000'] } },
  { name: 'amount as string', arguments: { amount: '5' }, expect: { decision: 'deny', denied_by: 'argument_type' } },
  { name: 'internal path', path: '/payments/internal/1', arguments: { amount: 5 }, expect: { decision: 'deny', denied_by: 'policy', policies: ['no-internal-payments-by-agents'] } },
  { name: 'internal path by person', agent: null, path: '/payments/internal/1', arguments: { amount: 5 }, expect: { decision: 'allow' } },
  { name: 'scope lacks refund', action: 'refund', agent: { id: 'agt_refunds', roles: ['refund-agent'] }, expect: { decision: 'deny', denied_by: 'token_scope' } },
  { name: 'refund flag', action: 'refund', token_scope: null, agent: { id: 'agt_refunds', roles: ['refund-agent'] }, arguments: { amount: 5 }, expect: { decision: 'approval_required' } },
  { name: 'agent lacks refund', action: 'refund', token_scope: null, expect: { decision: 'deny', denied_by: 'agent_roles' } },
  { name: 'person lacks mail', resource: MAIL, action: 'read', method: 'GET', path: '/inbox', token_scope: ['read'], expect: { decision: 'deny', denied_by: 'user_roles' } },
  { name: 'mail inside', resource: 'mail', action: 'send', token_scope: ['send'], person: { id: 'usr_carol', roles: ['mail-user'] }, arguments: { to: 'a@example.com' }, expect: { decision: 'allow' } },
  { name: 'mail outside', resource: 'mail', action: 'send', token_scope: ['send'], person: { id: 'usr_carol', roles: ['mail-user'] }, arguments: { to: 'a@evil.test' }, expect: { decision: 'deny', policies: ['company-mail-only'] } },
  { name: 'bob sends mail', resource: 'mail', action: 'send', token_scope: ['send'], person: { id: 'usr_bob', roles: ['mail-user'] }, arguments: { to: 'a@example.com' }, expect: { decision: 'deny', policies: ['no-bob-mail'] } },
  { name: 'no principal', person: null, agent: null, arguments: { amount: 5 }, expect: { decision: 'deny', denied_by: 'principal_missing' } },
];

function testFile(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    policy: { source: POLICY },
    resources: RESOURCES,
    roles: ROLES,
    defaults: {
      person: { id: 'usr_alice', roles: ['payer'] },
      agent: { id: 'agt_books', roles: ['pay-agent'] },
      token_scope: ['pay'],
      resource: 'payments',
      action: 'pay',
      method: 'POST',
      path: '/payments',
    },
    cases: CASES,
    ...overrides,
  };
}

describe('mandate policy test', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mandate-policy-test-'));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function write(name: string, content: unknown): string {
    const file = join(dir, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    return file;
  }

  /** Runs the CLI in this process: a file that names its policy needs no database. */
  async function cli(args: string[]): Promise<CliRun> {
    let stdout = '';
    let stderr = '';
    const code = await main(args, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), stdin: process.stdin });
    return { code, stdout, stderr };
  }

  test('all cases match', async () => {
    const file = write('all-match.json', testFile());
    const run = await cli(['policy', 'test', file]);
    assert.equal(run.stderr, '');
    assert.equal(run.stdout, `All ${CASES.length} cases match their expected decisions (policy: inline in ${file}).\n`);
    assert.equal(run.code, 0);
  });

  test('differing cases are listed', async () => {
    const flipped = CASES.map((item) => {
      if (item.name === 'small payment') return { ...item, expect: { decision: 'deny' } };
      if (item.name === 'mail outside') return { ...item, expect: { decision: 'deny', policies: ['no-bob-mail'] } };
      if (item.name === 'huge payment') return { ...item, expect: { decision: 'deny', denied_by: 'policy_error' } };
      return item;
    });
    const file = write('differ.json', testFile({ cases: flipped }));
    const run = await cli(['policy', 'test', file]);

    assert.equal(run.code, 1);
    assert.equal(run.stderr, '');
    assert.deepEqual(run.stdout.split('\n'), [
      'DIFF small payment: expected deny, got allow (person roles payer; agent roles pay-agent)',
      'DIFF huge payment: expected deny (denied_by policy_error), got deny (denied_by policy; policies never-above-100000; person roles payer; agent roles pay-agent)',
      'DIFF mail outside: expected deny (policies no-bob-mail), got deny (denied_by policy; policies company-mail-only; person roles mail-user; agent roles pay-agent)',
      `3 of ${CASES.length} cases differ from their expected decisions (policy: inline in ${file}).`,
      '',
    ]);
  });

  test('reversed expectations all differ', async () => {
    // With every expectation reversed, every case must be listed: none matches whatever it expects.
    const reversed = CASES.map((item) => ({ ...item, expect: { decision: item.expect.decision === 'allow' ? 'deny' : 'allow' } }));
    const run = await cli(['policy', 'test', write('reversed.json', testFile({ cases: reversed }))]);
    assert.equal(run.code, 1);
    const listed = run.stdout.split('\n').filter((line) => line.startsWith('DIFF ')).map((line) => line.slice(5, line.indexOf(':')));
    assert.deepEqual(listed, CASES.map((item) => item.name));
  });

  test('json output', async () => {
    const file = write('json.json', testFile({ cases: [{ name: 'big payment', arguments: { amount: 5000 }, expect: { decision: 'allow' } }] }));
    const run = await cli(['policy', 'test', file, '--json']);
    assert.equal(run.code, 1);
    const output = JSON.parse(run.stdout) as { cases: number; differing: Array<{ name: string; expected: unknown; actual: { decision: string; reasons: Record<string, unknown> } }> };
    assert.equal(output.cases, 1);
    assert.equal(output.differing.length, 1);
    assert.equal(output.differing[0]?.name, 'big payment');
    assert.deepEqual(output.differing[0]?.expected, { decision: 'allow' });
    assert.equal(output.differing[0]?.actual.decision, 'approval_required');
    assert.deepEqual(output.differing[0]?.actual.reasons.approvalRequiredBy, ['payments-above-1000']);
  });

  test('policy file beside the test file', async () => {
    mkdirSync(join(dir, 'repo/policies'), { recursive: true });
    write('repo/policies/payments.cedar', POLICY);
    const file = write('repo/cases.json', testFile({ policy: { file: 'policies/payments.cedar' } }));
    const run = await cli(['policy', 'test', file]);
    assert.equal(run.stdout, `All ${CASES.length} cases match their expected decisions (policy: policies/payments.cedar).\n`);
    assert.equal(run.code, 0);

    const missing = await cli(['policy', 'test', write('repo/missing.json', testFile({ policy: { file: 'policies/none.cedar' } }))]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^mandate policy: Cannot read the policy file .*policies\/none\.cedar named in .*missing\.json: ENOENT\.\n$/);
  });

  test('invalid policy is one line', async () => {
    // Cedar validates against the schema built from the file's resources: `amount` must be tested with `has`.
    const unsafe = 'forbid(principal, action == Action::"payments/pay", resource)\nwhen { context.arguments.amount > 1000 };';
    const file = write('unsafe.json', testFile({ policy: { source: unsafe } }));
    const run = await cli(['policy', 'test', file]);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.equal(run.stderr.split('\n').length, 2, 'one line');
    assert.match(run.stderr, /^mandate policy: The policy inline in .*unsafe\.json is invalid against the resources of .*: line 2, column 8: for policy `policy0`, unable to guarantee safety/);

    const unknownAction = await cli(['policy', 'test', write('unknown-action.json', testFile({ policy: { source: 'forbid(principal, action == Action::"payments/transfer", resource);' } }))]);
    assert.equal(unknownAction.code, 1);
    assert.match(unknownAction.stderr, /unrecognized action `Action::"payments\/transfer"`/);
  });

  test('bad file is one line', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['not-json.json', '{"cases": [', /^mandate policy: the policy test file .*not-json\.json is not valid JSON\.$/],
      ['unknown-member.json', testFile({ expected: 'allow' }), /^mandate policy: Invalid policy test file .*unknown-member\.json\. expected: is not a known field\.$/],
      ['bad-decision.json', testFile({ cases: [{ name: 'x', expect: { decision: 'permit' } }] }), /cases\.0\.expect\.decision: must be one of allow, deny, approval_required\.$/],
      ['bad-permission.json', testFile({ roles: { payer: ['payments pay'] } }), /roles\.payer\.0: must be "<resource identifier or \*> <action or \*>"/],
      ['unknown-resource.json', testFile({ cases: [{ name: 'x', resource: 'calendar', expect: { decision: 'allow' } }] }), /cases\.0\.resource: no resource of the file has the name or identifier "calendar"\.$/],
      ['unknown-action.json', testFile({ cases: [{ name: 'x', action: 'transfer', expect: { decision: 'allow' } }] }), /cases\.0\.action: the resource payments has no action "transfer"\.$/],
      ['unknown-role.json', testFile({ cases: [{ name: 'x', person: { id: 'u', roles: ['boss'] }, expect: { decision: 'allow' } }] }), /cases\.0\.person\.roles: the role "boss" is not defined in roles\.$/],
      ['bad-argument.json', testFile({ resources: [{ identifier: PAY, name: 'payments', actions: [{ name: 'pay', arguments: { amount: 'Integer' } }] }] }), /resources\.0\.actions\.0\.arguments\.amount: must be one of String, Long, Boolean/],
      ['repeated-name.json', testFile({ cases: [CASES[0], CASES[0]] }), /cases: must not repeat a case name/],
    ];
    for (const [name, content, message] of cases) {
      const run = await cli(['policy', 'test', write(name, content)]);
      assert.equal(run.code, 1, name);
      assert.equal(run.stdout, '', name);
      assert.equal(run.stderr.split('\n').length, 2, `${name}: one line`);
      assert.match(run.stderr.trim(), message, name);
    }

    const missing = await cli(['policy', 'test', join(dir, 'none.json')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^mandate policy: Cannot read the policy test file .*none\.json: ENOENT\.\n$/);
  });
});

describe('mandate policy test with the policy in force', () => {
  let cliEnvironment: CliEnvironment;

  before(async () => {
    cliEnvironment = await createCliEnvironment('mandate-policy-test-db-', { MANDATE_PORT: '18997' });
  });

  after(() => cliEnvironment.remove());

  const run = (args: string[]) => runCli(args, cliEnvironment.env);

  test('file without policy tests the saved one', async () => {
    const file = join(cliEnvironment.dataDir, 'cases.json');
    const cases = [
      { name: 'small payment', arguments: { amount: 500 }, expect: { decision: 'allow' } },
      { name: 'big payment', arguments: { amount: 5000 }, expect: { decision: 'approval_required' } },
    ];
    const { policy: _policy, ...withoutPolicy } = testFile({ cases });
    writeFileSync(file, JSON.stringify(withoutPolicy));

    const none = await run(['policy', 'test', file]);
    assert.equal(none.stdout, `DIFF big payment: expected approval_required, got allow (person roles payer; agent roles pay-agent)\n1 of 2 cases differ from their expected decisions (policy: version 0 in force).\n`);
    assert.equal(none.code, 1);

    const created = await run(['resources', 'create', '--name', 'payments', '--identifier', PAY, '--action', 'pay POST /payments amount:Long currency:String']);
    assert.equal(created.code, 0, created.stderr);
    const policyFile = join(cliEnvironment.dataDir, 'saved.cedar');
    writeFileSync(policyFile, `@approval\nforbid(principal, action == Action::"payments/pay", resource)\nunless { context.arguments has amount && context.arguments.amount <= 1000 };\n`);
    const saved = await run(['policy', 'set', policyFile]);
    assert.equal(saved.code, 0, saved.stderr);

    const tested = await run(['policy', 'test', file]);
    assert.equal(tested.stdout, 'All 2 cases match their expected decisions (policy: version 1 in force).\n');
    assert.equal(tested.code, 0);
  });
});
