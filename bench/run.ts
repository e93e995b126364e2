/**
 * `npm run bench [-- --warmup S --duration S --out FILE --only policy]`: measures Mandate's
 * `client_credentials` throughput against a bare `node:http` baseline, the latency its gateway
 * adds over calling the upstream directly, with Mandate's peak memory, and the policy decisions
 * (in-process latency, and AuthZEN evaluations against a bare `node:http` server). Writes the
 * results to docs/benchmarks.md. Every server runs as a child process on 127.0.0.1. The run takes
 * 16 × (warm-up + duration) seconds plus the setup, which took about 20 s on the machine
 * described in docs/benchmarks.md. `--only policy` runs the 8 policy rows alone and replaces only
 * their section of the page.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { REPOSITORY_ROOT, startChildServer, type ChildServer } from './child-process.ts';
import { basicAuthorization, delegatedTokenByCodeFlow } from './delegated-token.ts';
import { runLoad, type LoadRequest } from './load.ts';
import { RESOURCE_NAME, SCOPE, TOKEN_TTL_SECONDS, USERNAME, createRecords, prepareMandate, startMandate, type BenchRecords } from './mandate-process.ts';
import { otherProcessesShare, sampleCpu } from './cpu-share.ts';
import { readPeakRss, resetPeakRss } from './memory.ts';
import { describeMachine, printTable, renderMarkdown, type BenchReport, type Measurement } from './report.ts';
import { AUTHZEN_CONNECTIONS, measurePolicy } from './policy-bench.ts';
import { printPolicyTable, renderPolicySection, replacePolicySection, type PolicyReport } from './policy-report.ts';

const TOKEN_CONNECTIONS = [16, 64];
/** One connection shows the added latency without queueing, and sixteen show it under load. */
const GATEWAY_CONNECTIONS = [1, 16];

/**
 * Process ids of this process (the load generator) and of the servers it started. Every other
 * process counts as other work on the machine.
 */
const benchmarkPids: number[] = [process.pid];

interface Settings {
  warmupSeconds: number;
  durationSeconds: number;
  out: string;
  command: string;
  /** Runs only the policy benchmarks and replaces only their section of the page. */
  policyOnly: boolean;
}

/** In-process decision rows of the policy benchmarks (see policy-bench.ts). */
const POLICY_LATENCY_ROWS = 4;

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  const machine = describeMachine();
  const loadBefore = loadavg()[0] ?? 0;
  const policyPhases = POLICY_LATENCY_ROWS + 2 * AUTHZEN_CONNECTIONS.length;
  const phases = settings.policyOnly ? policyPhases : 2 * (TOKEN_CONNECTIONS.length + GATEWAY_CONNECTIONS.length) + policyPhases;
  if (loadBefore > machine.cpus / 2) log(`Warning: the load average is ${loadBefore.toFixed(2)} on ${machine.cpus} CPUs, so other processes may slow this run down.`);
  log(`Benchmark: ${phases} phases of ${settings.warmupSeconds} s warm-up + ${settings.durationSeconds} s on ${machine.cpus} CPUs (${machine.cpuModel}).`);

  const upstreamCredential = randomBytes(24).toString('base64url');
  const mandateInstance = await prepareMandate();
  const servers: ChildServer[] = [];
  const track = (server: ChildServer): ChildServer => {
    servers.push(server);
    benchmarkPids.push(server.pid);
    return server;
  };

  try {
    const upstream = track(await startChildServer('Upstream API', 'bench/upstream-server.ts', [], { ...process.env, UPSTREAM_CREDENTIAL: upstreamCredential }, /listening on (\S+)$/));

    log('Creating the resource, role, person, agent and stored credential with the mandate CLI.');
    const records = await createRecords(mandateInstance, upstream.url, upstreamCredential);
    const mandate = track(await startMandate(mandateInstance));
    const policyInput = {
      settings,
      instance: mandateInstance,
      records,
      mandate,
      benchmarkPids,
      measure: (target: string, server: ChildServer, processName: string, connections: number, request: LoadRequest) => measure(settings, target, server, processName, connections, request),
      log,
    };

    if (settings.policyOnly) {
      const policy: PolicyReport = { date: new Date(), command: settings.command, machine, warmupSeconds: settings.warmupSeconds, durationSeconds: settings.durationSeconds, measurements: await measurePolicy(policyInput) };
      printPolicyTable(policy);
      writeFileSync(settings.out, replacePolicySection(readFileSync(settings.out, 'utf8'), renderPolicySection(policy)));
      log(`Replaced the policy section of ${settings.out}.`);
      return;
    }

    const baseline = track(await startBaseline(mandateInstance.issuer, records));
    const tokens = await measureTokens(settings, mandate, baseline, records);
    const gateway = await measureGateway(settings, mandate, upstream, records, upstreamCredential, mandateInstance.issuer);
    // The policy rows come last, because they save a policy that Mandate then applies to every call.
    const measurements = await measurePolicy(policyInput);

    const report: BenchReport = {
      date: new Date(),
      command: settings.command,
      machine,
      warmupSeconds: settings.warmupSeconds,
      durationSeconds: settings.durationSeconds,
      tokens,
      gateway,
      policy: { date: new Date(), command: settings.command, machine, warmupSeconds: settings.warmupSeconds, durationSeconds: settings.durationSeconds, measurements },
    };
    printTable(report);
    printPolicyTable(report.policy);
    writeFileSync(settings.out, renderMarkdown(report));
    log(`Wrote ${settings.out}.`);
  } finally {
    for (const server of servers.reverse()) await server.stop();
    rmSync(mandateInstance.dataDir, { recursive: true, force: true });
  }
}

async function startBaseline(issuer: string, records: BenchRecords): Promise<ChildServer> {
  const env = {
    ...process.env,
    BASELINE_ISSUER: issuer,
    BASELINE_AUDIENCE: records.resourceIdentifier,
    BASELINE_SCOPE: SCOPE,
    BASELINE_CLIENT_ID: records.agentId,
    BASELINE_SECRET_SHA256: sha256Hex(records.agentSecret),
    BASELINE_TOKEN_TTL_SECONDS: String(TOKEN_TTL_SECONDS),
  };
  return startChildServer('Baseline token endpoint', 'bench/baseline-server.ts', [], env, /listening on (\S+)$/);
}

/** Sends the same token request to both servers at each number of connections, baseline first. */
async function measureTokens(settings: Settings, mandate: ChildServer, baseline: ChildServer, records: BenchRecords): Promise<BenchReport['tokens']> {
  const request: LoadRequest = {
    method: 'POST',
    path: '/token',
    headers: { authorization: basicAuthorization(records.agentId, records.agentSecret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: records.resourceIdentifier, scope: SCOPE }).toString(),
  };
  await checkSameTokenShape(mandate, baseline, request);

  const pairs: BenchReport['tokens'] = [];
  for (const connections of TOKEN_CONNECTIONS) {
    const baselineRun = await measure(settings, 'baseline /token', baseline, 'baseline', connections, request);
    const mandateRun = await measure(settings, 'Mandate /token', mandate, 'Mandate', connections, request);
    pairs.push({ baseline: baselineRun, mandate: mandateRun });
  }
  return pairs;
}

/** Calls the upstream directly and through the gateway with a delegated token, direct first. */
async function measureGateway(settings: Settings, mandate: ChildServer, upstream: ChildServer, records: BenchRecords, upstreamCredential: string, issuer: string): Promise<BenchReport['gateway']> {
  const token = await delegatedTokenByCodeFlow({ issuer, agentId: records.agentId, agentSecret: records.agentSecret, redirectUri: records.redirectUri, resource: records.resourceIdentifier, scope: SCOPE, username: USERNAME, password: records.password });
  const direct: LoadRequest = { method: 'GET', path: '/api/items', headers: { authorization: `Bearer ${upstreamCredential}` } };
  const viaGateway: LoadRequest = { method: 'GET', path: `/gateway/${RESOURCE_NAME}/items`, headers: { authorization: `Bearer ${token}` } };
  await checkSameBody(upstream, direct, mandate, viaGateway);

  const pairs: BenchReport['gateway'] = [];
  for (const connections of GATEWAY_CONNECTIONS) {
    const directRun = await measure(settings, 'upstream direct', upstream, 'upstream', connections, direct);
    const gatewayRun = await measure(settings, 'Mandate gateway', mandate, 'Mandate', connections, viaGateway);
    pairs.push({ direct: directRun, gateway: gatewayRun });
  }
  return pairs;
}

/** Runs one load phase and reads the peak memory of the process that served it. */
async function measure(settings: Settings, target: string, server: ChildServer, processName: string, connections: number, request: LoadRequest): Promise<Measurement> {
  resetPeakRss(server.pid);
  const cpuBefore = sampleCpu(benchmarkPids);
  const result = await runLoad({ origin: server.url, request, connections, warmupSeconds: settings.warmupSeconds, durationSeconds: settings.durationSeconds, expectedStatus: 200 });
  const otherCpuShare = otherProcessesShare(cpuBefore, sampleCpu(benchmarkPids));
  const peakRssBytes = readPeakRss(server.pid);

  if (result.errors > 0) {
    throw new Error(`${target} with ${connections} connections: ${result.errors} of ${result.requests + result.errors} measured requests failed. First failure: ${result.firstError ?? 'unknown'}`);
  }
  log(`${target}, ${connections} connections: ${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms.`);
  return { target, connections, result, peakRssBytes, process: processName, otherCpuShare };
}

/** Stops the run unless both servers return the same response fields, JWT header and claim names. */
async function checkSameTokenShape(mandate: ChildServer, baseline: ChildServer, request: LoadRequest): Promise<void> {
  const shapes = await Promise.all(
    [mandate, baseline].map(async (server) => {
      const response = await fetch(new URL(request.path, server.url), { method: request.method, headers: request.headers, body: request.body ?? null });
      const body = (await response.json()) as Record<string, unknown>;
      if (response.status !== 200 || typeof body.access_token !== 'string') throw new Error(`${server.name} did not issue a token: ${response.status} ${JSON.stringify(body.error ?? '')}`);
      const header = decodeProtectedHeader(body.access_token);
      const claims = decodeJwt(body.access_token);
      return JSON.stringify({ fields: Object.keys(body).sort(), alg: header.alg, typ: header.typ, claims: Object.keys(claims).sort(), scope: claims.scope, aud: claims.aud });
    }),
  );
  if (shapes[0] !== shapes[1]) throw new Error(`The baseline no longer issues what Mandate issues. Mandate: ${shapes[0] ?? ''}. Baseline: ${shapes[1] ?? ''}.`);
}

/** Stops the run unless the gateway returns the upstream's response body unchanged. */
async function checkSameBody(upstream: ChildServer, direct: LoadRequest, mandate: ChildServer, viaGateway: LoadRequest): Promise<void> {
  const [directResponse, gatewayResponse] = await Promise.all([fetch(new URL(direct.path, upstream.url), { headers: direct.headers }), fetch(new URL(viaGateway.path, mandate.url), { headers: viaGateway.headers })]);
  const [directBody, gatewayBody] = await Promise.all([directResponse.text(), gatewayResponse.text()]);
  if (directResponse.status !== 200 || gatewayResponse.status !== 200 || directBody !== gatewayBody) {
    throw new Error(`The gateway call does not match the direct call: direct ${directResponse.status}, gateway ${gatewayResponse.status} ${gatewayBody.slice(0, 300)}`);
  }
}

function parseSettings(args: string[]): Settings {
  const { values } = parseArgs({
    args,
    options: { warmup: { type: 'string', default: '5' }, duration: { type: 'string', default: '10' }, out: { type: 'string', default: 'docs/benchmarks.md' }, only: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.only !== undefined && values.only !== 'policy') throw new Error(`Invalid --only ${JSON.stringify(values.only)}: the only partial run is --only policy.`);
  return {
    warmupSeconds: secondsOption('--warmup', values.warmup, 0, 60),
    durationSeconds: secondsOption('--duration', values.duration, 1, 120),
    out: resolve(REPOSITORY_ROOT, values.out),
    command: args.length === 0 ? 'npm run bench' : `npm run bench -- ${args.join(' ')}`,
    policyOnly: values.only === 'policy',
  };
}

function secondsOption(name: string, value: string, min: number, max: number): number {
  const seconds = Number(value);
  if (!Number.isInteger(seconds) || seconds < min || seconds > max) throw new Error(`Invalid ${name} ${JSON.stringify(value)}: use whole seconds from ${min} to ${max}.`);
  return seconds;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

try {
  await main();
} catch (error) {
  // fetch() reports only "fetch failed" and keeps the reason, such as ECONNREFUSED, in `cause`.
  const cause = (error as Error).cause;
  const reason = cause instanceof Error ? ` (${cause.message})` : '';
  process.stderr.write(`bench: ${(error as Error).message}${reason}\n`);
  process.exitCode = 1;
}
