import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** The root of the repository, which is the working directory of every child process. */
export const REPOSITORY_ROOT = new URL('..', import.meta.url).pathname;

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

/** A server running in a child process of the benchmark, so that its memory can be read alone. */
export interface ChildServer {
  name: string;
  pid: number;
  /** Base URL the server printed when it was ready. */
  url: string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

// A benchmark that fails half-way must not leave servers behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts `node --import tsx <script> ...args` and waits until a stdout line matches `ready`,
 * whose first group is the server's base URL. The child's stderr is kept for the error message
 * if it exits or stays silent for 30 seconds.
 */
export async function startChildServer(name: string, script: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<ChildServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: REPOSITORY_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });

  const url = await new Promise<string>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(`did not report ready within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    function fail(reason: string) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${name} ${reason}. Its stderr: ${stderr.trim() || '(empty)'}`));
    }

    // The reader keeps draining stdout after the ready line, so that the child does not block on a full pipe.
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = ready.exec(line);
      if (settled || match?.[1] === undefined) return;
      settled = true;
      clearTimeout(timer);
      resolve(match[1]);
    });
    child.once('exit', (code, signal) => fail(`exited before it was ready (code ${String(code)}, signal ${String(signal)})`));
    child.once('error', (error) => fail(`failed to start: ${error.message}`));
  });

  // A server that dies during a phase only shows as failed requests, so its end is reported with its stderr.
  let stopping = false;
  child.once('exit', (code, signal) => {
    if (!stopping) process.stderr.write(`bench: ${name} exited during the run (code ${String(code)}, signal ${String(signal)}). Its stderr: ${stderr.trim() || '(empty)'}\n`);
  });

  return {
    name,
    pid: child.pid ?? 0,
    url,
    stop: () => {
      stopping = true;
      return stopChild(child);
    },
  };
}

/** Sends SIGTERM, and SIGKILL if the child is still running after five seconds. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Runs a script to completion and returns its stdout. A non-zero exit code throws an error that contains its stderr. */
export async function runToCompletion(label: string, script: string, args: string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: REPOSITORY_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));

  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(stdin);

  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`${label} failed with exit code ${String(code)}: ${stderr.trim() || '(no stderr)'}`);
  return stdout;
}
