import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer } from '../harness.ts';
import { loadMasterKey } from '../../src/crypto/master-key.ts';

describe('keys', () => {
  test('master key file is created owner-only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-key-'));
    const first = loadMasterKey(undefined, dir);
    assert.equal(first.source, 'file');
    assert.equal(statSync(join(dir, 'master.key')).mode & 0o777, 0o600);
    assert.deepEqual(loadMasterKey(undefined, dir).key, first.key);
  });

  test('readable master key file is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-key-'));
    writeFileSync(join(dir, 'master.key'), `${Buffer.alloc(32, 1).toString('base64url')}\n`);
    chmodSync(join(dir, 'master.key'), 0o644);
    assert.throws(() => loadMasterKey(undefined, dir), /readable by other users/);
  });

  test('generated key file logs a development warning', async () => {
    const server = await startTestServer({ masterKey: undefined });
    try {
      const warning = server.logs.find((line) => line.includes('DEVELOPMENT MODE'));
      assert.ok(warning !== undefined, 'expected a development-mode warning');
      assert.equal(JSON.parse(warning).level, 40);
    } finally {
      await server.stop();
    }
  });

  test('signing keys are stored encrypted', async () => {
    const server = await startTestServer();
    try {
      const rows = await server.ctx.db.selectFrom('signing_keys').selectAll().execute();
      assert.deepEqual(rows.map((row) => `${row.purpose}:${row.alg}`).sort(), ['access_token:EdDSA', 'id_token:RS256']);
      for (const row of rows) {
        assert.equal((JSON.parse(row.public_jwk) as { d?: string }).d, undefined);
        // A compact JWE has five parts and does not contain the private JWK's members in clear.
        assert.equal(row.private_jwk_encrypted.split('.').length, 5);
        assert.equal(row.private_jwk_encrypted.includes('"d"'), false);
      }

      const jwks = (await (await fetch(`${server.issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> };
      assert.deepEqual(jwks.keys.map((key) => key.kid).sort(), rows.map((row) => row.kid).sort());
    } finally {
      await server.stop();
    }
  });
});
