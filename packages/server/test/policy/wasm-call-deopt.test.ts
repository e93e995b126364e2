import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const SERVER_ROOT = join(import.meta.dirname, '..', '..');
const CHILD = join(import.meta.dirname, 'wasm-call-deopt-child.ts');
const CEDAR_WASM_ENTRY = join('src', 'policy', 'cedar-wasm.ts');

test('Cedar call survives deoptimization mid-call', () => {
  const child = spawnSync(process.execPath, ['--import', 'tsx', CHILD], { cwd: SERVER_ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(child.signal, null, `the child was stopped by ${child.signal}: ${child.stderr.slice(0, 400)}`);
  assert.equal(child.status, 0, child.stderr.slice(0, 400));
  assert.deepEqual(JSON.parse(child.stdout), ['allow', 'changed']);
});

test('cedar-wasm imported only through cedar-wasm.ts', () => {
  const offenders = sourceFiles(join(SERVER_ROOT, 'src'))
    .filter((path) => relative(SERVER_ROOT, path) !== CEDAR_WASM_ENTRY)
    .filter((path) => readFileSync(path, 'utf8').includes('@cedar-policy/cedar-wasm'))
    .map((path) => relative(SERVER_ROOT, path));
  assert.deepEqual(offenders, []);
});

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}
