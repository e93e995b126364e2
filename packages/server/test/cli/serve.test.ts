import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startTestServer } from '../harness.ts';
import { startServerProcess } from '../server-process.ts';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

// The process lifecycle does not depend on the database, so these tests use SQLite on both runs.
describe('mandate serve', () => {
  test('serves, then shuts down on SIGTERM', async () => {
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'mandate-serve-'));
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve'], {
      env: { ...process.env, MANDATE_PORT: String(port), MANDATE_DATA_DIR: dataDir, MANDATE_LOG_LEVEL: 'warn', MANDATE_DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    const deadline = Date.now() + 30_000;
    while (!stdout.includes('listening') && Date.now() < deadline && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.match(stdout, new RegExp(`listening on http://127.0.0.1:${port}`), `server output: ${stderr}`);
    // The server logs (pino, JSON lines) go to standard output, the warning among them.
    assert.match(stdout, /DEVELOPMENT MODE/);

    const metadata = (await (await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`)).json()) as { issuer: string };
    assert.equal(metadata.issuer, `http://127.0.0.1:${port}`);

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(stderr, /Received SIGTERM/);
  });

  test('invalid setting exits 1 with one line', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'serve'], { env: { ...process.env, MANDATE_PORT: 'eighty' }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 1);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /MANDATE_PORT/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });
});

describe('bin/mandate.mjs', () => {
  test('serves pages from any directory', async (t) => {
    const shared = await startTestServer();
    t.after(() => shared.stop());
    const elsewhere = mkdtempSync(join(tmpdir(), 'mandate-cwd-'));
    const child = await startServerProcess(shared, {}, { viaBin: true, cwd: elsewhere });
    t.after(() => child.stop());

    // The sign-in page is JSX: without the repository's JSX settings tsx compiled it for React, and it failed with 500.
    const login = await fetch(`${child.issuer}/login`);
    assert.equal(login.status, 200, child.outputTail());
    assert.match(await login.text(), /<form[^>]*action="\/login"/);
  });
});
