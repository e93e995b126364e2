import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Writable } from 'node:stream';
import { parseConfig } from '../src/config/load.ts';
import type { ConfigInput } from '../src/config/schema.ts';
import { startServer, type CreateOptions, type MandateServer } from '../src/server.ts';
import { generateMasterKey } from '../src/crypto/master-key.ts';

/** Which database the suite runs on: `MANDATE_TEST_DB=postgres` or SQLite by default. */
export const TEST_DB = process.env.MANDATE_TEST_DB === 'postgres' ? 'postgres' : 'sqlite';
export const TEST_POSTGRES_URL = process.env.MANDATE_TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

export interface TestServer extends MandateServer {
  issuer: string;
  dataDir: string;
  /** Every log line the server wrote, for assertions that secrets never reach the log. */
  logs: string[];
  masterKey: string;
  /** The PostgreSQL schema of the server's database; undefined on SQLite. */
  postgresSchema: string | undefined;
  stop(): Promise<void>;
}

/** Returns a free loopback port (the issuer must name the port before the server listens). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts a real Mandate server on loopback with a fresh database (a temp SQLite file or a
 * PostgreSQL schema). `options` passes what is not configuration, such as trusted certificates.
 * With `shareDatabaseWith`, the server opens the other server's database (the same SQLite file
 * or PostgreSQL schema) and master key instead, as a second process of one deployment would.
 * The data directory is then removed only by the server that created it.
 */
export async function startTestServer(settings: Partial<ConfigInput> = {}, options: Pick<CreateOptions, 'trustedCertificates'> & { shareDatabaseWith?: TestServer } = {}): Promise<TestServer> {
  const { shareDatabaseWith: shared, ...createOptions } = options;
  const dataDir = shared?.dataDir ?? mkdtempSync(join(tmpdir(), 'mandate-test-'));
  const port = await freePort();
  let schema = shared?.postgresSchema;
  if (shared === undefined && TEST_DB === 'postgres') schema = await createSchema();
  const masterKey = shared?.masterKey ?? generateMasterKey();

  const config = parseConfig({
    issuer: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    masterKey,
    logLevel: 'info',
    allowLoopbackUpstreams: true,
    ...(TEST_DB === 'postgres' ? { databaseUrl: TEST_POSTGRES_URL } : {}),
    ...settings,
  });

  const logs: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString());
      callback();
    },
  });
  const server = await startServer(config, { ...createOptions, store: { postgresSchema: schema }, logStream });

  return {
    ...server,
    issuer: config.issuer,
    dataDir,
    logs,
    masterKey,
    postgresSchema: schema,
    stop: async () => {
      await server.close();
      if (shared === undefined) rmSync(dataDir, { recursive: true, force: true });
      // PostgreSQL schemas stay until the next run starts (scripts/test.mjs drops them): Kysely's
      // migrator reads the catalog of every schema, and a schema dropped meanwhile by another
      // test file makes that read fail.
    },
  };
}

/** Creates a PostgreSQL schema with a random name in the test database and returns its name. */
export async function createSchema(): Promise<string> {
  const name = `t_${Math.random().toString(36).slice(2, 12)}`;
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await client.connect();
  await client.query(`CREATE SCHEMA ${name}`);
  await client.end();
  return name;
}
