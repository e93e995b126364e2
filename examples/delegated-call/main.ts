// Runs the delegated tool call example: `npm run example`. It starts Mandate on a fresh SQLite
// database in a temporary folder, a mail API and a notes API on loopback, and Chromium for
// Alice's pages, then prints each step.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { parseConfig } from '../../packages/server/src/config/load.ts';
import { generateMasterKey } from '../../packages/server/src/crypto/master-key.ts';
import { startServer } from '../../packages/server/src/server.ts';
import { runDelegatedCall } from './scenario.ts';

const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];

const dataDir = mkdtempSync(join(tmpdir(), 'mandate-example-'));
const port = Number(process.env.MANDATE_EXAMPLE_PORT ?? 8787);
const config = parseConfig({ issuer: `http://127.0.0.1:${port}`, port, dataDir, masterKey: generateMasterKey(), logLevel: 'warn', allowLoopbackUpstreams: true });

const server = await startServer(config);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_FLAGS });
let failed = false;
try {
  console.log(`Mandate is running at ${server.url} (SQLite in ${dataDir})\n`);
  const report = await runDelegatedCall({
    issuer: config.issuer,
    ctx: server.ctx,
    browser,
    log: (step, detail) => console.log(`[${step}] ${detail ?? ''}`),
  });
  console.log(`\nThe agent never saw alice's upstream key: ${String(report.credentialSeenByAgent === false)}`);
} catch (error) {
  failed = true;
  console.error(`The example failed: ${(error as Error).message}`);
} finally {
  await browser.close();
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
