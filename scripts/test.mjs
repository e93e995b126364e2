// Runs the test suite on SQLite, then on PostgreSQL (or on the one named: `node scripts/test.mjs sqlite`).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const databases = process.argv[2] === undefined ? ['sqlite', 'postgres'] : [process.argv[2]];
for (const database of databases) {
  if (database !== 'sqlite' && database !== 'postgres') {
    console.error(`Unknown database ${database}: use sqlite or postgres.`);
    process.exit(1);
  }
}

// Node 20 does not expand globs given to --test, so the files are listed here.
function testFiles(dir) {
  const files = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...testFiles(path));
    else if (name.endsWith('.test.ts')) files.push(path);
  }
  return files;
}

/** Drops the schemas that earlier runs' test servers left in the PostgreSQL test database. */
async function dropTestSchemas() {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: process.env.MANDATE_TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test' });
  await client.connect();
  const { rows } = await client.query("SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_[a-z0-9]+$'");
  for (const { nspname } of rows) await client.query(`DROP SCHEMA "${nspname}" CASCADE`);
  await client.end();
}

const files = [...testFiles('packages'), ...testFiles('examples')].sort();
let failed = false;
for (const database of databases) {
  console.log(`\n# Test suite on ${database}: ${files.length} files`);
  if (database === 'postgres') await dropTestSchemas();
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files], {
    stdio: 'inherit',
    env: { ...process.env, MANDATE_TEST_DB: database },
  });
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
