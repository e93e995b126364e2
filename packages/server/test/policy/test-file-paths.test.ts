import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTestFile } from '../../src/policy/test-cases-file.ts';

const RESOURCE = 'https://api.example.test/pay';

/** Builds a test file with one case that sets `members`. */
function fileWith(members: Record<string, unknown>): unknown {
  return {
    resources: [{ identifier: RESOURCE, name: 'payments', actions: [{ name: 'pay' }] }],
    cases: [{ name: 'one', resource: 'payments', action: 'pay', ...members, expect: { decision: 'allow' } }],
  };
}

test('case path is decoded like the gateway', () => {
  const parsed = parseTestFile(fileWith({ method: 'POST', path: '/payments/%69nternal', query: 'dry_run=1' }), 'test file');
  assert.equal(parsed.cases[0]?.path, '/payments/internal');
  assert.equal(parsed.cases[0]?.query, 'dry_run=1');
  assert.equal(parsed.cases[0]?.method, 'POST');
});

test('case paths the gateway rejects fail', () => {
  for (const [path, message] of [
    ['/payments/x/../internal', /cases\.0\.path: is a path the gateway rejects: The gateway path must not contain "\." or "\.\." segments\.$/],
    ['/payments//internal', /cases\.0\.path: is a path the gateway rejects/],
    ['/payments?x=1', /cases\.0\.path: must not contain a query/],
  ] as const) {
    assert.throws(() => parseTestFile(fileWith({ path }), 'test file'), (error: Error) => message.test(error.message), path);
  }
});

test('lower-case case method fails', () => {
  assert.throws(() => parseTestFile(fileWith({ method: 'get' }), 'test file'), (error: Error) => /cases\.0\.method: must be an upper-case HTTP method/.test(error.message));
});
