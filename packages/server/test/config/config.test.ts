import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.ts';

function rejectsWith(env: Record<string, string>, pattern: RegExp): void {
  assert.throws(() => loadConfig(env), (error: Error) => error instanceof ConfigError && pattern.test(error.message));
}

describe('configuration', () => {
  test('defaults start on SQLite at 127.0.0.1:8080', () => {
    const config = loadConfig({});
    assert.equal(config.issuer, 'http://127.0.0.1:8080');
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.accessTokenTtlSeconds, 600);
    assert.equal(config.mode, 'development');
  });

  test('environment variables set each setting', () => {
    const config = loadConfig({ MANDATE_PORT: '9999', MANDATE_ISSUER: 'https://auth.example.test', MANDATE_DATABASE_URL: 'postgresql://db/mandate', MANDATE_ACCESS_TOKEN_TTL_SECONDS: '300' });
    assert.equal(config.port, 9999);
    assert.equal(config.issuer, 'https://auth.example.test');
    assert.equal(config.databaseUrl, 'postgresql://db/mandate');
    assert.equal(config.accessTokenTtlSeconds, 300);
  });

  test('token lifetime above 30 minutes is refused', () => {
    rejectsWith({ MANDATE_ACCESS_TOKEN_TTL_SECONDS: '1801' }, /accessTokenTtlSeconds \(MANDATE_ACCESS_TOKEN_TTL_SECONDS\)/);
  });

  test('invalid values name the setting and variable', () => {
    rejectsWith({ MANDATE_PORT: 'eighty' }, /port \(MANDATE_PORT\)/);
    rejectsWith({ MANDATE_ISSUER: 'https://auth.example.test/' }, /issuer \(MANDATE_ISSUER\).*trailing slash/);
    rejectsWith({ MANDATE_DATABASE_URL: 'mysql://db' }, /databaseUrl \(MANDATE_DATABASE_URL\).*postgres/);
    rejectsWith({ MANDATE_MASTER_KEY: 'short' }, /masterKey \(MANDATE_MASTER_KEY\).*32 bytes/);
  });

  test('production needs an explicit master key', () => {
    rejectsWith({ MANDATE_MODE: 'production' }, /masterKey.*MANDATE_MASTER_KEY/);
  });

  test('file settings apply and unknown keys are refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-config-'));
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ port: 7000, issuer: 'http://127.0.0.1:7000' }));
    assert.equal(loadConfig({ MANDATE_CONFIG: good }).port, 7000);
    assert.equal(loadConfig({ MANDATE_CONFIG: good, MANDATE_PORT: '7001' }).port, 7001);

    const unknown = join(dir, 'unknown.json');
    writeFileSync(unknown, JSON.stringify({ prot: 7000 }));
    rejectsWith({ MANDATE_CONFIG: unknown }, /Unknown setting prot/);

    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{ port: ');
    rejectsWith({ MANDATE_CONFIG: broken }, /not valid JSON/);
    rejectsWith({ MANDATE_CONFIG: join(dir, 'missing.json') }, /Cannot read the configuration file/);
  });
});
