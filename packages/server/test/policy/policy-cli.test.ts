import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { TEST_DB, TEST_POSTGRES_URL } from '../harness.ts';
import { generateMasterKey } from '../../src/crypto/master-key.ts';

const BIN = fileURLToPath(new URL('../../bin/mandate.mjs', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('mandate policy CLI', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'mandate-policy-cli-'));
    env = { PATH: process.env.PATH, HOME: process.env.HOME, MANDATE_DATA_DIR: dataDir, MANDATE_MASTER_KEY: generateMasterKey(), MANDATE_PORT: '18998' };
    if (TEST_DB === 'postgres') {
      const schema = `t_${Math.random().toString(36).slice(2, 12)}`;
      const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await client.connect();
      await client.query(`CREATE SCHEMA ${schema}`);
      await client.end();
      env.MANDATE_DATABASE_URL = `${TEST_POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    }
  });

  after(() => {
    // The PostgreSQL schema stays until the next run starts, like the test servers' schemas.
    rmSync(dataDir, { recursive: true, force: true });
  });

  function run(args: string[]): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end();
    });
  }

  function policyFile(name: string, text: string): string {
    const file = join(dataDir, name);
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
    const missing = await run(['policy', 'set', join(dataDir, 'missing.cedar')]);
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
