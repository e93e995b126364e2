import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSchema, TEST_DB, TEST_POSTGRES_URL, type TestServer } from '../harness.ts';
import { generateMasterKey } from '../../src/crypto/master-key.ts';

const BIN = fileURLToPath(new URL('../../bin/mandate.mjs', import.meta.url));

/** The exit code and output of one `mandate` run. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the `mandate` binary in a child process with exactly `env` as its environment, writes
 * `stdin` to it and resolves with the exit code and output once the process has closed.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** A data directory and a database of their own for CLI runs. */
export interface CliEnvironment {
  /** The temporary directory named by MANDATE_DATA_DIR, which contains the SQLite database on SQLite. */
  dataDir: string;
  /** The whole environment of each run. It contains PATH, HOME and MANDATE_* variables, and nothing else of this process's environment. */
  env: NodeJS.ProcessEnv;
  /** Removes the data directory. */
  remove(): void;
}

/**
 * Creates a temporary data directory (its name starts with `prefix`), a new master key and, when
 * the suite runs on PostgreSQL, a new schema, and returns the environment that points the CLI at
 * them. `settings` adds or overrides MANDATE_* variables. The schema stays until the next test run
 * starts, like the test servers' schemas, because dropping it now would break the migrations of
 * test files running at the same time.
 */
export async function createCliEnvironment(prefix: string, settings: NodeJS.ProcessEnv = {}): Promise<CliEnvironment> {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, MANDATE_DATA_DIR: dataDir, MANDATE_MASTER_KEY: generateMasterKey(), ...settings };
  if (TEST_DB === 'postgres') env.MANDATE_DATABASE_URL = schemaDatabaseUrl(await createSchema());
  return { dataDir, env, remove: () => rmSync(dataDir, { recursive: true, force: true }) };
}

/** Returns the environment that points the CLI at the data directory, master key and database of a running test server. */
export function serverCliEnvironment(server: TestServer, settings: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, MANDATE_DATA_DIR: server.dataDir, MANDATE_MASTER_KEY: server.masterKey, ...settings };
  if (server.postgresSchema !== undefined) env.MANDATE_DATABASE_URL = schemaDatabaseUrl(server.postgresSchema);
  return env;
}

/** Returns the test database URL with `schema` as the search path of every connection (the libpq `options` parameter). */
function schemaDatabaseUrl(schema: string): string {
  return `${TEST_POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}
