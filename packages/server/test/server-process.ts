import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { ConfigInput } from '../src/config/schema.ts';
import { freePort, type TestServer } from './harness.ts';

/** The CLI entry that `npm start` runs as `node --import tsx packages/server/src/cli/main.ts serve`. */
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

/** The package's `mandate` executable, which registers tsx itself. */
const BIN = fileURLToPath(new URL('../bin/mandate.mjs', import.meta.url));

/** How the process is started: through `bin/mandate.mjs` instead of the CLI entry, and in which working directory. */
export interface LaunchOptions {
  viaBin?: boolean;
  cwd?: string;
}

/** How long the process may take, from the spawn, to serve its discovery document. */
const READY_TIMEOUT_MS = 30_000;
/** How long the process may take to exit after SIGTERM before it gets SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;
/** How much of the process output a failure message quotes, from the end. */
const OUTPUT_TAIL_CHARS = 8_000;

/** A `mandate serve` process that the test started, and the means to stop it. */
export interface ServerProcess {
  /** The process's own URL on loopback, which is also its issuer. */
  issuer: string;
  pid: number;
  /** The end of what the process wrote to stdout (pino JSON lines) and stderr, for failure messages. */
  outputTail(): string;
  /**
   * Sends SIGTERM and waits for the exit, with SIGKILL after STOP_TIMEOUT_MS. Never throws, so
   * cleanup goes on. Returns the exit code (null when a signal ended the process) and the signal.
   */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `mandate serve` in a separate OS process, as an operator starts a second process of a
 * deployment: the same database as `shared` (its SQLite file, or its PostgreSQL database and
 * schema) and the same master key, configured through MANDATE_* variables only, on a free
 * loopback port with the issuer set to its own URL. `settings` add or override settings, and
 * `launch` picks the executable and the working directory.
 * Resolves once the discovery document names that issuer. When the process does not get there
 * within READY_TIMEOUT_MS, it is stopped and the error quotes its output.
 */
export async function startServerProcess(shared: TestServer, settings: Partial<ConfigInput> = {}, launch: LaunchOptions = {}): Promise<ServerProcess> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const databaseUrl = sharedDatabaseUrl(shared);
  const configuration: Partial<ConfigInput> = {
    issuer,
    host: '127.0.0.1',
    port,
    dataDir: shared.dataDir,
    masterKey: shared.masterKey,
    logLevel: 'info',
    allowLoopbackUpstreams: true,
    ...(databaseUrl === undefined ? {} : { databaseUrl }),
    ...settings,
  };

  const args = launch.viaBin === true ? [BIN, 'serve'] : ['--import', 'tsx', CLI, 'serve'];
  const child = spawn(process.execPath, args, { env: serveEnvironment(configuration), stdio: ['ignore', 'pipe', 'pipe'], ...(launch.cwd === undefined ? {} : { cwd: launch.cwd }) });
  let output = '';
  const record = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout.on('data', record);
  child.stderr.on('data', record);
  let spawnError: Error | undefined;
  child.on('error', (error) => {
    spawnError = error;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });

  // Kills the process when the test file exits without calling stop (an uncaught error, or
  // process.exit). NOTE: a test process ended by a signal such as SIGTERM or SIGKILL emits no
  // 'exit' event, so this process then stays behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  const outputTail = () => (output === '' ? '(no output)' : output);
  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const ended = await exited;
      clearTimeout(timer);
      return ended;
    }
    return child.pid === undefined ? { code: null, signal: null } : exited;
  };

  try {
    await waitUntilReady(issuer, () => spawnError ?? exitOf(child), outputTail);
  } catch (error) {
    await stop();
    throw error;
  }
  return { issuer, pid: child.pid ?? 0, outputTail, stop };
}

/**
 * Returns the database URL of `shared`, naming its PostgreSQL schema when it has one. The schema goes
 * in the libpq `options` parameter (`-c search_path=…`), which node-postgres sends at connect,
 * so every pooled connection of the process starts in that schema.
 */
function sharedDatabaseUrl(shared: TestServer): string | undefined {
  const url = shared.ctx.config.databaseUrl;
  if (url === undefined || shared.postgresSchema === undefined) return url;

  const withSchema = new URL(url);
  withSchema.searchParams.set('options', `-c search_path=${shared.postgresSchema}`);
  return withSchema.href;
}

/**
 * Builds the environment of the process: this one's, without its MANDATE_* variables, so that
 * nothing from the test run leaks into the configuration, plus one variable per setting.
 */
function serveEnvironment(configuration: Partial<ConfigInput>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('MANDATE_') && name !== 'NODE_TEST_CONTEXT') env[name] = value;
  }
  for (const [key, value] of Object.entries(configuration)) {
    if (value !== undefined) env[`MANDATE_${key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`] = String(value);
  }
  return env;
}

function exitOf(child: ReturnType<typeof spawn>): Error | undefined {
  if (child.exitCode === null && child.signalCode === null) return undefined;
  return new Error(`exited with ${child.exitCode === null ? `signal ${String(child.signalCode)}` : `code ${child.exitCode}`}`);
}

/**
 * Polls the discovery document until it names `issuer`. A document naming another issuer means
 * that another server listens on the port, so that fails at once, as does an exit of the process.
 */
async function waitUntilReady(issuer: string, failure: () => Error | undefined, outputTail: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const url = `${issuer}/.well-known/openid-configuration`;

  while (Date.now() < deadline) {
    const failed = failure();
    if (failed !== undefined) throw new Error(`mandate serve failed before it was ready at ${issuer}: ${failed.message}. Its output:\n${outputTail()}`);

    const metadata = await fetchJson(url);
    if (metadata !== undefined) {
      if (metadata.issuer === issuer) return;
      throw new Error(`${url} names the issuer ${String(metadata.issuer)} instead of ${issuer}: another server listens on that port. Output of mandate serve:\n${outputTail()}`);
    }
    await delay(100);
  }
  throw new Error(`mandate serve did not serve ${url} within ${READY_TIMEOUT_MS} ms. Its output:\n${outputTail()}`);
}

/** Returns the JSON object at `url`, or undefined while the request fails or the status is not 200. */
async function fetchJson(url: string): Promise<Record<string, unknown> | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    if (response.status !== 200) return undefined;
    const body: unknown = await response.json();
    return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  } catch {
    return undefined;
  }
}
