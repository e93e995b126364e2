import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config/load.ts';
import { createContext } from '../../src/server.ts';
import { createCliEnvironment, runCli, type CliEnvironment } from './cli-runner.ts';

describe('mandate CLI', () => {
  let cli: CliEnvironment;

  before(async () => {
    cli = await createCliEnvironment('mandate-cli-', { MANDATE_PORT: '18999' });
  });

  after(() => cli.remove());

  const run = (args: string[], stdin?: string) => runCli(args, cli.env, stdin);

  test('init prints the admin secret once', async () => {
    const first = await run(['init', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const admin = JSON.parse(first.stdout) as { client_id: string; client_secret: string };
    assert.match(admin.client_id, /^adm_/);
    assert.ok(admin.client_secret.length >= 40);

    const second = await run(['init']);
    assert.equal(second.code, 1);
    assert.equal(second.stdout, '');
    assert.match(second.stderr, /admin client already exists/);
    assert.equal(second.stderr.includes(admin.client_secret), false);
    assert.equal(second.stderr.trim().split('\n').length, 1);
  });

  test('keygen prints a master key', async () => {
    const result = await run(['keygen']);
    assert.equal(result.code, 0);
    assert.match(result.stdout.trim(), /^[A-Za-z0-9_-]{43}$/);
  });

  test('users create reads the password from stdin', async () => {
    const result = await run(['users', 'create', '--username', 'alice', '--display-name', 'Alice', '--json'], 'correct horse battery\n');
    assert.equal(result.code, 0, result.stderr);
    const user = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.equal(user.username, 'alice');
    assert.equal(user.display_name, 'Alice');
    assert.equal(JSON.stringify(user).includes('correct horse battery'), false);
  });

  test('short password is one line and exit 1', async () => {
    const result = await run(['users', 'create', '--username', 'bob'], 'short\n');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /password: must be at least 12 characters/);
    assert.equal(result.stderr.trim().split('\n').length, 1);
  });

  test('roles, agents and resources create with --json', async () => {
    const role = await run(['roles', 'create', '--name', 'reader', '--permission', '* read', '--json']);
    assert.equal(role.code, 0, role.stderr);
    assert.deepEqual((JSON.parse(role.stdout) as { permissions: unknown }).permissions, [{ resource: '*', action: 'read' }]);

    const agent = await run(['agents', 'create', '--name', 'bot', '--owner', 'alice', '--role', 'reader', '--redirect-uri', 'https://bot.example/cb', '--json']);
    assert.equal(agent.code, 0, agent.stderr);
    const created = JSON.parse(agent.stdout) as Record<string, unknown>;
    assert.match(String(created.client_id), /^agt_/);
    assert.equal(typeof created.client_secret, 'string');
    assert.deepEqual(created.roles, ['reader']);

    const listed = await run(['agents', 'list', '--json']);
    assert.equal(listed.stdout.includes(String(created.client_secret)), false);

    const resource = await run(['resources', 'create', '--name', 'github', '--upstream', 'https://api.github.com', '--action', 'repo.read GET /repos', '--action', 'repo.write POST /repos approval', '--json']);
    assert.equal(resource.code, 0, resource.stderr);
    const stored = JSON.parse(resource.stdout) as { identifier: string; access_token_ttl_seconds: number; actions: Array<{ name: string; requires_approval: number }> };
    assert.equal(stored.identifier, 'http://127.0.0.1:18999/gateway/github');
    assert.equal(stored.access_token_ttl_seconds, 600);
    assert.equal(stored.actions.find((action) => action.name === 'repo.write')?.requires_approval, 1);
  });

  test('token lifetime above 1800 is rejected', async () => {
    const result = await run(['resources', 'create', '--name', 'slow', '--upstream', 'https://slow.example', '--token-ttl', '3600']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /access_token_ttl_seconds: must be at most 1800 seconds/);
  });

  test('credentials set reads stdin and never prints it', async () => {
    const secret = 'ghp_cliCredentialValue987';
    const set = await run(['credentials', 'set', '--user', 'alice', '--resource', 'github', '--json'], `${secret}\n`);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout.includes(secret), false);

    const file = join(cli.dataDir, 'credential.txt');
    writeFileSync(file, `${secret}-2\n`, { mode: 0o600 });
    const fromFile = await run(['credentials', 'set', '--user', 'alice', '--resource', 'github', '--credential-file', file]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.match(fromFile.stdout, /^Replaced/);

    const listed = await run(['credentials', 'list', '--json']);
    assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 1);
    const tail = await run(['audit', 'tail', '--json', '--limit', '1000']);
    assert.equal(tail.stdout.includes(secret), false);
  });

  test('credential on argv is rejected', async () => {
    const result = await run(['credentials', 'set', '--user', 'alice', '--resource', 'github', '--credential', 'abc']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Unknown option '--credential'/);
  });

  test('bad arguments exit 1 with one line and no stack trace', async () => {
    for (const args of [['users', 'create', '--nope'], ['frobnicate'], ['agents'], ['agents', 'grant', 'only-one'], ['delegations', 'revoke'], ['audit', 'tail', '--limit', 'abc'], ['users', 'grant', 'ghost', 'reader']]) {
      const result = await run(args);
      assert.equal(result.code, 1, args.join(' '));
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
      assert.match(lines[0] ?? '', /^mandate/);
    }
  });

  test('agents revoke and delegations list', async () => {
    const agents = JSON.parse((await run(['agents', 'list', '--json'])).stdout) as Array<{ client_id: string }>;
    const revoke = await run(['agents', 'revoke', agents[0]?.client_id ?? '', '--json']);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.deepEqual(JSON.parse(revoke.stdout), { revoked: 0 });

    const listed = await run(['delegations', 'list', '--user', 'alice', '--active', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), []);
  });

  test('audit verify reports the first altered entry', async () => {
    const intact = await run(['audit', 'verify']);
    assert.equal(intact.code, 0, intact.stderr);
    assert.match(intact.stdout, /intact/);

    await tamperWithAuditEntry(cli.env, 3);

    const broken = await run(['audit', 'verify']);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /broken at entry 3\b/);
  });

  test('missing configuration value is one line', async () => {
    const saved = cli.env.MANDATE_MASTER_KEY;
    cli.env.MANDATE_MASTER_KEY = 'too-short';
    const result = await run(['users', 'list']);
    cli.env.MANDATE_MASTER_KEY = saved;
    assert.equal(result.code, 1);
    assert.match(result.stderr, /masterKey/);
    assert.equal(result.stderr.trim().split('\n').length, 1);
  });
});

/** Rewrites one audit entry the way an attacker with database access could, bypassing the append-only triggers. */
async function tamperWithAuditEntry(env: NodeJS.ProcessEnv, seq: number): Promise<void> {
  const ctx = await createContext(loadConfig({ ...env, MANDATE_LOG_LEVEL: 'silent' }));
  try {
    if (ctx.store.dialect === 'sqlite') {
      await sql`DROP TRIGGER audit_log_no_update`.execute(ctx.db);
    } else {
      await sql`ALTER TABLE audit_log DISABLE TRIGGER USER`.execute(ctx.db);
    }
    const row = await ctx.db.selectFrom('audit_log').select('entry').where('seq', '=', seq).executeTakeFirstOrThrow();
    await ctx.db.updateTable('audit_log').set({ entry: row.entry.replace('"created"', '"forged"') }).where('seq', '=', seq).execute();
  } finally {
    await ctx.store.close();
  }
}
