import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { loadConfig } from '../../src/config/load.ts';
import { createContext } from '../../src/server.ts';
import { COMMAND_NAMES, main } from '../../src/cli/main.ts';
import { createCliEnvironment, runCli, type CliEnvironment } from './cli-runner.ts';

describe('mandate --help', () => {
  // No master key and a data directory that does not exist: help must not open the database or keys.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, MANDATE_DATA_DIR: join(tmpdir(), 'mandate-help-never-created') };

  /** Runs the CLI in this process, which is fast enough to visit every command; the binary is run below. */
  async function runInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const code = await main(args, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), stdin: Readable.from([]) });
    return { code, stdout, stderr };
  }

  test('binary prints command usage', async () => {
    for (const flag of ['--help', '-h']) {
      const result = await runCli(['resources', flag], env);
      assert.equal(result.code, 0, `resources ${flag}: ${result.stderr}`);
      assert.equal(result.stderr, '');
      assert.match(result.stdout, /^Usage: mandate <command> \[options\]\n/);
      assert.match(result.stdout, /^ {2}resources\b/m);
    }
  });

  test('every command prints its usage', async () => {
    assert.ok(COMMAND_NAMES.includes('resources'), 'the command list is the one main runs');
    for (const command of COMMAND_NAMES) {
      for (const flag of ['--help', '-h']) {
        const result = await runInProcess([command, flag]);
        assert.equal(result.code, 0, `${command} ${flag}: ${result.stderr}`);
        assert.equal(result.stderr, '', `${command} ${flag}`);
        assert.match(result.stdout, /^Usage: mandate <command> \[options\]\n/, `${command} ${flag}`);
        assert.match(result.stdout, new RegExp(`^  ${command}\\b`, 'm'), `${command} ${flag}`);
        const otherCommands = COMMAND_NAMES.filter((name) => name !== command && !name.startsWith(command) && !command.startsWith(name));
        for (const other of otherCommands) assert.doesNotMatch(result.stdout, new RegExp(`^  ${other}\\b`, 'm'), `${command} ${flag} lists only its own usage`);
      }
    }
  });

  test('command help lists every subcommand', async () => {
    const withoutSubcommands = ['serve', 'init', 'keygen'];
    for (const command of COMMAND_NAMES) {
      const unknown = await runInProcess([command, 'no-such-subcommand']);
      assert.equal(unknown.code, 1, command);
      if (withoutSubcommands.includes(command)) {
        assert.match(unknown.stderr, /^mandate \w+: Expected no positional arguments, got no-such-subcommand\.\n$/, command);
        continue;
      }
      const known = /unknown subcommand no-such-subcommand; use one of ([^.]+)\./.exec(unknown.stderr)?.[1];
      assert.ok(known !== undefined, `${command}: ${unknown.stderr}`);

      const help = await runInProcess([command, '--help']);
      for (const name of known.split(', ')) {
        assert.match(help.stdout, new RegExp(`^  ${command} (.*\\| )?${name}\\b`, 'm'), `${command} --help lists ${name}`);
      }
    }
  });

  test('help after subcommand and options', async () => {
    const cases = [
      ['resources', 'create', '--name', 'x', '--help'],
      ['serve', '--help'],
      ['audit', 'tail', '--limit', '3', '-h'],
      ['policy', 'replay', '--help'],
      ['help', 'resources'],
    ];
    for (const args of cases) {
      const result = await runCli(args, env);
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stdout, /^Usage: mandate /, args.join(' '));
    }

    const full = await runCli(['help'], env);
    assert.equal(full.code, 0);
    for (const command of COMMAND_NAMES) assert.match(full.stdout, new RegExp(`^  ${command}\\b`, 'm'), `help lists ${command}`);

    const unknown = await runCli(['help', 'frobnicate'], env);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /^mandate help: expected one command name of serve, .*, got frobnicate\.\n$/);
  });

  test('--help after -- is an argument', async () => {
    // `--` ends the options, so `--help` is a positional argument that `keygen` rejects.
    const result = await runCli(['keygen', '--', '--help'], env);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^mandate keygen: Expected no positional arguments, got --help\.\n$/);
  });
});

describe('mandate audit tail', () => {
  const ENTRIES = 12;
  let cli: CliEnvironment;
  /** Sequence numbers of the entries in the log, oldest first. */
  let sequence: number[];

  before(async () => {
    cli = await createCliEnvironment('mandate-cli-audit-', { MANDATE_LOG_LEVEL: 'silent' });

    const ctx = await createContext(loadConfig(cli.env));
    try {
      for (let index = 1; index <= ENTRIES; index += 1) await ctx.audit({ event: 'test.entry', target: { index }, outcome: { result: 'recorded' } });
      const rows = await ctx.db.selectFrom('audit_log').select('seq').orderBy('seq', 'asc').execute();
      sequence = rows.map((row) => Number(row.seq));
    } finally {
      await ctx.store.close();
    }
    assert.ok(sequence.length >= ENTRIES);
  });

  after(() => cli.remove());

  async function tail(args: string[]): Promise<number[]> {
    const result = await runCli(['audit', 'tail', '--json', ...args], cli.env);
    assert.equal(result.code, 0, result.stderr);
    return (JSON.parse(result.stdout) as Array<{ seq: number }>).map((entry) => entry.seq);
  }

  test('--limit prints the latest entries', async () => {
    assert.deepEqual(await tail(['--limit', '3']), sequence.slice(-3));
    assert.deepEqual(await tail(['--limit', '1']), sequence.slice(-1));
  });

  test('without --limit prints up to 100', async () => {
    assert.deepEqual(await tail([]), sequence.slice(-100));
  });

  test('--limit above the count prints all', async () => {
    assert.deepEqual(await tail(['--limit', '1000']), sequence);
  });

  test('--after pages forward', async () => {
    const start = sequence[1] ?? 0;
    assert.deepEqual(await tail(['--after', String(start), '--limit', '3']), sequence.filter((seq) => seq > start).slice(0, 3));
  });

  test('text output is latest, oldest first', async () => {
    const result = await runCli(['audit', 'tail', '--limit', '2'], cli.env);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', new RegExp(`^${sequence.at(-2)}  .*"index":${ENTRIES - 1}\\b`));
    assert.match(lines[1] ?? '', new RegExp(`^${sequence.at(-1)}  .*"index":${ENTRIES}\\b`));
  });

  test('invalid --limit exits 1 with one line', async () => {
    for (const limit of ['0', '1001', 'abc', '-1']) {
      const result = await runCli(['audit', 'tail', '--limit', limit], cli.env);
      assert.equal(result.code, 1, limit);
      assert.equal(result.stdout, '', limit);
      assert.match(result.stderr, /^mandate audit: .*limit/, limit);
      assert.equal(result.stderr.trim().split('\n').length, 1, limit);
    }
  });
});
