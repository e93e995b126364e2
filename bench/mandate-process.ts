import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runToCompletion, startChildServer, type ChildServer } from './child-process.ts';

const CLI = 'packages/server/src/cli/main.ts';

/**
 * Gateway resource that every benchmark uses. Its action `read` maps to `GET /items`. The
 * policy benchmarks decide its action `pay` (`POST /payments`), which declares the arguments
 * `amount` (Long) and `currency` (String).
 */
export const RESOURCE_NAME = 'bench-items';
export const SCOPE = 'read';
export const PAY_ACTION = 'pay';
export const TOKEN_TTL_SECONDS = 1800;
export const USERNAME = 'bench-person';

/** Rate limit high enough that no benchmark request is rejected by it. */
const RATE_LIMIT_PER_MINUTE = 100_000_000;

export interface MandateInstance {
  issuer: string;
  dataDir: string;
  /** The MANDATE_* settings of the server and of every CLI call against its database. */
  env: NodeJS.ProcessEnv;
}

/** The records the benchmark creates. The secrets stay in this process, and the benchmark does not print them. */
export interface BenchRecords {
  agentId: string;
  agentSecret: string;
  resourceIdentifier: string;
  password: string;
  redirectUri: string;
}

/** Chooses a free loopback port, a temporary data directory and a new master key, but starts nothing yet. */
export async function prepareMandate(): Promise<MandateInstance> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'mandate-bench-'));

  const env: NodeJS.ProcessEnv = { ...withoutMandateSettings(process.env) };
  Object.assign(env, {
    MANDATE_ISSUER: issuer,
    MANDATE_HOST: '127.0.0.1',
    MANDATE_PORT: String(port),
    MANDATE_DATA_DIR: dataDir,
    MANDATE_MASTER_KEY: randomBytes(32).toString('base64url'),
    MANDATE_LOG_LEVEL: 'warn',
    MANDATE_RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT_PER_MINUTE),
    MANDATE_ALLOW_LOOPBACK_UPSTREAMS: 'true',
  });
  return { issuer, dataDir, env };
}

/**
 * Creates, with the `mandate` CLI, a role allowing `read` and `pay` on the gateway resource, a
 * person and an agent holding it, and the person's stored credential for the upstream.
 */
export async function createRecords(mandate: MandateInstance, upstreamUrl: string, upstreamCredential: string): Promise<BenchRecords> {
  const password = randomBytes(18).toString('base64url');
  const redirectUri = 'http://127.0.0.1:9/callback';
  const resource = JSON.parse(
    await cli(mandate, [
      'resources',
      'create',
      '--name',
      RESOURCE_NAME,
      '--upstream',
      `${upstreamUrl}/api`,
      '--token-ttl',
      String(TOKEN_TTL_SECONDS),
      '--action',
      `${SCOPE} GET /items`,
      '--action',
      `${PAY_ACTION} POST /payments amount:Long currency:String`,
      '--json',
    ]),
  ) as { identifier: string };

  await cli(mandate, ['roles', 'create', '--name', 'bench-reader', '--permission', `${resource.identifier} ${SCOPE}`, '--permission', `${resource.identifier} ${PAY_ACTION}`]);
  await cli(mandate, ['users', 'create', '--username', USERNAME, '--role', 'bench-reader'], password);
  const agent = JSON.parse(await cli(mandate, ['agents', 'create', '--name', 'Bench agent', '--redirect-uri', redirectUri, '--role', 'bench-reader', '--json'])) as { client_id: string; client_secret: string };
  await cli(mandate, ['credentials', 'set', '--user', USERNAME, '--resource', RESOURCE_NAME], upstreamCredential);

  return { agentId: agent.client_id, agentSecret: agent.client_secret, resourceIdentifier: resource.identifier, password, redirectUri };
}

/** Starts `mandate serve` in a child process with the instance's settings. */
export async function startMandate(mandate: MandateInstance): Promise<ChildServer> {
  return startChildServer('Mandate', CLI, ['serve'], mandate.env, /^Mandate is listening on (\S+) /);
}

async function cli(mandate: MandateInstance, args: string[], stdin = ''): Promise<string> {
  return runToCompletion(`mandate ${args.slice(0, 2).join(' ')}`, CLI, args, mandate.env, stdin);
}

/** Drops MANDATE_* variables of the caller's shell, so that only the benchmark's settings apply. */
function withoutMandateSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('MANDATE_')));
}

/** Returns a loopback port that was free a moment ago, because the issuer must name the port before Mandate listens. */
async function freePort(): Promise<number> {
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
