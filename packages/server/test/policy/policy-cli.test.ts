import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCliEnvironment, runCli, type CliEnvironment } from '../cli/cli-runner.ts';

describe('mandate policy CLI', () => {
  let cli: CliEnvironment;

  before(async () => {
    cli = await createCliEnvironment('mandate-policy-cli-', { MANDATE_PORT: '18998' });
  });

  after(() => cli.remove());

  const run = (args: string[]) => runCli(args, cli.env);

  function policyFile(name: string, text: string): string {
    const file = join(cli.dataDir, name);
    writeFileSync(file, text);
    return file;
  }

  const POLICY = `// Payments above 1000 need the person's approval.
@id("payments-above-1000")
@approval
forbid(principal, action == Action::"payments/pay", resource)
unless { context.arguments has amount && context.arguments.amount <= 1000 };
`;

  test('resources create declares arguments', async () => {
    const created = await run(['resources', 'create', '--name', 'payments', '--identifier', 'https://payments.example.test/', '--action', 'pay POST /payments amount:Long currency:String', '--action', 'repo:read GET /repos', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const resource = JSON.parse(created.stdout) as { actions: Array<{ name: string; method: string; path_prefix: string; arguments: Record<string, string> }> };
    const pay = resource.actions.find((action) => action.name === 'pay');
    assert.deepEqual(pay?.arguments, { amount: 'Long', currency: 'String' });
    assert.equal(pay?.method, 'POST');
    assert.equal(pay?.path_prefix, '/payments');
    assert.deepEqual(resource.actions.find((action) => action.name === 'repo:read')?.arguments, {}, 'a name with a colon stays a name');

    const wrongType = await run(['resources', 'create', '--name', 'other', '--identifier', 'https://other.example.test/', '--action', 'pay POST /x amount:Integer']);
    assert.equal(wrongType.code, 1);
    assert.match(wrongType.stderr, /arguments\.amount: must be one of String, Long, Boolean/);
    assert.equal(wrongType.stderr.trim().split('\n').length, 1);

    const twice = await run(['resources', 'create', '--name', 'other', '--identifier', 'https://other.example.test/', '--action', 'pay amount:Long amount:String']);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /the argument amount is declared twice/);
  });

  test('policy show before any policy', async () => {
    const shown = await run(['policy', 'show']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout, '');
    assert.match(shown.stderr, /No policy was saved \(version 0\)/);
  });

  test('policy set saves and show prints it', async () => {
    const file = policyFile('payments.cedar', POLICY);
    const saved = await run(['policy', 'set', file]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.equal(saved.stdout, `Saved policy version 1 from ${file}.\n`);

    const shown = await run(['policy', 'show']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout, POLICY);
    assert.match(shown.stderr, /^Policy version 1, saved \d{4}-\d\d-\d\dT[\d:]+Z by cli:/);

    const json = await run(['policy', 'show', '--json']);
    assert.equal((JSON.parse(json.stdout) as { version: number }).version, 1);
  });

  test('policy set rejects an invalid policy', async () => {
    const file = policyFile('broken.cedar', 'forbid(principal, action == Action::"payments/pay", resource)\nwhen { context.arguments.amount > 1000 };\n');
    const rejected = await run(['policy', 'set', file]);
    assert.equal(rejected.code, 1);
    assert.equal(rejected.stdout, '');
    assert.equal(rejected.stderr.trim().split('\n').length, 1, 'one line');
    assert.match(rejected.stderr, /^mandate policy: The policy is invalid and was not saved, so version 1 stays in force\. line 2, column 8: for policy `policy0`, unable to guarantee safety/);

    const shown = await run(['policy', 'show']);
    assert.equal(shown.stdout, POLICY, 'the previous version stays');
  });

  test('policy set needs a readable file', async () => {
    const missing = await run(['policy', 'set', join(cli.dataDir, 'missing.cedar')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Cannot read the policy file .*missing\.cedar: ENOENT/);

    const none = await run(['policy', 'set']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /Expected <file>, got none/);

    const unknown = await run(['policy', 'delete']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown subcommand delete; use one of show, set/);
  });
});
