/**
 * The policy benchmarks: the latency of one decision in this process (`decide` alone, and
 * `decideCall` with its database reads), and AuthZEN Access Evaluations per second over HTTP
 * next to a bare `node:http` server that returns a fixed decision.
 */
import { setTimeout as delay } from 'node:timers/promises';
import pino from 'pino';
import { updatePolicy } from '../packages/server/src/admin/policy.ts';
import { createClientRecord } from '../packages/server/src/admin/clients.ts';
import { loadConfig } from '../packages/server/src/config/load.ts';
import type { ServerContext } from '../packages/server/src/context.ts';
import { compilePolicy, type PolicySet } from '../packages/server/src/policy/cedar-compile.ts';
import { buildCedarSchema } from '../packages/server/src/policy/cedar-schema.ts';
import { decideCall, type CallToDecide } from '../packages/server/src/policy/decision-point.ts';
import { decide, type DecisionRequest } from '../packages/server/src/policy/decision.ts';
import { findResourceByName } from '../packages/server/src/resources/registry.ts';
import { createContext } from '../packages/server/src/server.ts';
import { startChildServer, type ChildServer } from './child-process.ts';
import { sampleCpu, otherProcessesShare } from './cpu-share.ts';
import { basicAuthorization, delegatedTokenByCodeFlow } from './delegated-token.ts';
import { percentile, type LoadRequest } from './load.ts';
import { PAY_ACTION, RESOURCE_NAME, SCOPE, USERNAME, type BenchRecords, type MandateInstance } from './mandate-process.ts';
import type { Measurement } from './report.ts';

/** One connection shows the latency of a single evaluation, and sixteen show the throughput under load. */
export const AUTHZEN_CONNECTIONS = [1, 16];

/** Upper bound on the latency samples of one in-process row, so that its memory stays bounded (16 MiB). */
const MAX_SAMPLES = 2_000_000;

/** How long the event loop runs after the in-process rows before any HTTP request is sent. */
const IO_SETTLE_MS = 100;

const BENCH_ROLE = 'bench-reader';
const PAY_ARGUMENTS = { amount: 'Long', currency: 'String' } as const;
const PAY_CALL = { arguments: { amount: 500, currency: 'EUR' }, method: 'POST', path: '/payments' };

/**
 * The Cedar policy of the benchmark: four `forbid` policies, three of which apply to `pay` and
 * read its arguments or path. The measured call (500 EUR to /payments) passes all of them, so
 * Cedar evaluates every condition and the decision is `allow`.
 */
export const BENCH_POLICY = `@id("payments-above-1000")
@approval
forbid(principal, action == Action::"${RESOURCE_NAME}/${PAY_ACTION}", resource)
unless { context.arguments has amount && context.arguments.amount <= 1000 };

@id("euro-only")
forbid(principal, action == Action::"${RESOURCE_NAME}/${PAY_ACTION}", resource)
unless { context.arguments has currency && context.arguments.currency == "EUR" };

@id("no-internal-payments-by-agents")
forbid(principal is Agent, action == Action::"${RESOURCE_NAME}/${PAY_ACTION}", resource)
when { context has path && context.path like "/payments/internal*" };

@id("no-archive")
forbid(principal, action == Action::"${RESOURCE_NAME}/${SCOPE}", resource)
when { context has path && context.path like "/items/archive*" };
`;

/** The latency of one kind of decision made in this process, one at a time. */
export interface LatencyRow {
  name: string;
  samples: number;
  p50Microseconds: number;
  p99Microseconds: number;
  /** Share (0 to 1) of the machine's CPU time that processes outside the benchmark used during the row. */
  otherCpuShare: number;
}

export interface PolicyMeasurements {
  latency: LatencyRow[];
  authzen: Array<{ bare: Measurement; mandate: Measurement }>;
}

export interface PolicyBenchInput {
  settings: { warmupSeconds: number; durationSeconds: number };
  instance: MandateInstance;
  records: BenchRecords;
  mandate: ChildServer;
  /** Process ids of the benchmark. A server started here is added, so that its CPU time counts as the benchmark's. */
  benchmarkPids: number[];
  /** Runs one HTTP load phase, as for the other benchmarks. */
  measure: (target: string, server: ChildServer, processName: string, connections: number, request: LoadRequest) => Promise<Measurement>;
  log: (line: string) => void;
}

/**
 * Measures the in-process decision latency, saves BENCH_POLICY as the policy in force, and
 * measures AuthZEN evaluations against the bare server. Mandate decides with that policy for
 * the rest of the run.
 */
export async function measurePolicy(input: PolicyBenchInput): Promise<PolicyMeasurements> {
  const { settings, log } = input;
  const ctx = await createContext(loadConfig(input.instance.env), { logStream: pino.destination(2) });
  const bare = await startChildServer('Bare node:http server', 'bench/bare-http-server.ts', [], process.env, /listening on (\S+)$/);
  input.benchmarkPids.push(bare.pid);

  try {
    const resource = await findResourceByName(ctx, RESOURCE_NAME);
    const payAction = resource?.actions.find((action) => action.name === PAY_ACTION);
    if (resource === undefined || payAction === undefined) throw new Error(`The resource ${RESOURCE_NAME} with its action ${PAY_ACTION} is missing.`);
    const person = await ctx.db.selectFrom('users').select('id').where('tenant_id', '=', ctx.tenantId).where('username', '=', USERNAME).executeTakeFirstOrThrow();

    const request = inProcessRequest(person.id, input.records.agentId, resource.identifier);
    const compiled = compileBenchPolicy();
    const call: CallToDecide = {
      userId: person.id,
      agentId: input.records.agentId,
      tokenScope: [SCOPE, PAY_ACTION],
      resource: { identifier: resource.identifier, name: resource.name },
      action: payAction,
      arguments: { values: PAY_CALL.arguments, duplicateNames: [] },
      method: PAY_CALL.method,
      path: PAY_CALL.path,
    };

    const latency: LatencyRow[] = [];
    const record = (row: LatencyRow) => {
      latency.push(row);
      log(`${row.name}: p50 ${row.p50Microseconds.toFixed(1)} µs, p99 ${row.p99Microseconds.toFixed(1)} µs over ${row.samples} decisions.`);
    };
    record(measureSync('decide(), roles and scope only', () => expectAllow(decide(request, { kind: 'none', version: 0 }).decision), settings, input.benchmarkPids));
    record(measureSync('decide() with the Cedar policy', () => expectAllow(decide(request, compiled).decision), settings, input.benchmarkPids));
    record(await measureAsync('decideCall() on SQLite, no policy saved', async () => expectAllow((await decideCall(ctx, call)).decision.decision), settings, input.benchmarkPids));

    await updatePolicy(ctx, { source: BENCH_POLICY }, 'bench');
    record(await measureAsync('decideCall() on SQLite with the Cedar policy', async () => expectAllow((await decideCall(ctx, call)).decision.decision), settings, input.benchmarkPids));

    // The rows above never let the event loop poll for I/O (better-sqlite3 runs synchronously), so a
    // keep-alive socket that a server closed meanwhile would still sit in fetch's pool and fail
    // the next request with "other side closed". A short pause lets those closes arrive first.
    await delay(IO_SETTLE_MS);
    const authzen = await measureAuthzen(input, ctx, bare, resource.identifier);
    return { latency, authzen };
  } finally {
    await bare.stop();
    // A stopped process has no /proc entry left to sample.
    input.benchmarkPids.splice(input.benchmarkPids.indexOf(bare.pid), 1);
    await ctx.store.close();
  }
}

/** Builds the pay call as `decide` receives it: both parties hold the benchmark role, and the token carries both actions. */
function inProcessRequest(personId: string, agentId: string, identifier: string): DecisionRequest {
  const permissions = [SCOPE, PAY_ACTION].map((action) => ({ role: BENCH_ROLE, resource: identifier, action }));
  return {
    person: { id: personId, permissions },
    agent: { id: agentId, permissions },
    tokenScope: [SCOPE, PAY_ACTION],
    resource: { identifier, name: RESOURCE_NAME },
    action: { name: PAY_ACTION, requiresApproval: false, arguments: PAY_ARGUMENTS },
    context: PAY_CALL,
  };
}

function compileBenchPolicy(): PolicySet {
  const schema = buildCedarSchema([{ name: RESOURCE_NAME, actions: [{ name: SCOPE, arguments: {} }, { name: PAY_ACTION, arguments: PAY_ARGUMENTS }] }]);
  const result = compilePolicy(BENCH_POLICY, 1, schema);
  if (!result.ok) throw new Error(`The benchmark policy does not compile: ${JSON.stringify(result.errors)}`);
  return result.policySet;
}

/** Stops the run when a decision is not the expected allow, because its latency would describe another path. */
function expectAllow(decision: string): void {
  if (decision !== 'allow') throw new Error(`The benchmark call was decided ${decision}, expected allow.`);
}

/**
 * Calls `decide` back to back: a warm-up that is not recorded, then the measured window, each
 * call timed alone with `process.hrtime.bigint()`.
 */
function measureSync(name: string, decideOnce: () => void, settings: PolicyBenchInput['settings'], pids: number[]): LatencyRow {
  const warmupUntil = performance.now() + settings.warmupSeconds * 1000;
  while (performance.now() < warmupUntil) decideOnce();

  const samples = new Float64Array(MAX_SAMPLES);
  let count = 0;
  const cpuBefore = sampleCpu(pids);
  const stopAt = performance.now() + settings.durationSeconds * 1000;
  while (count < MAX_SAMPLES && performance.now() < stopAt) {
    const started = process.hrtime.bigint();
    decideOnce();
    samples[count] = Number(process.hrtime.bigint() - started) / 1000;
    count += 1;
  }
  return latencyRow(name, samples.subarray(0, count), otherProcessesShare(cpuBefore, sampleCpu(pids)));
}

/** Awaits one decision at a time, so that the latency includes the database reads but no queueing. */
async function measureAsync(name: string, decideOnce: () => Promise<void>, settings: PolicyBenchInput['settings'], pids: number[]): Promise<LatencyRow> {
  const warmupUntil = performance.now() + settings.warmupSeconds * 1000;
  while (performance.now() < warmupUntil) await decideOnce();

  const samples = new Float64Array(MAX_SAMPLES);
  let count = 0;
  const cpuBefore = sampleCpu(pids);
  const stopAt = performance.now() + settings.durationSeconds * 1000;
  while (count < MAX_SAMPLES && performance.now() < stopAt) {
    const started = process.hrtime.bigint();
    await decideOnce();
    samples[count] = Number(process.hrtime.bigint() - started) / 1000;
    count += 1;
  }
  return latencyRow(name, samples.subarray(0, count), otherProcessesShare(cpuBefore, sampleCpu(pids)));
}

function latencyRow(name: string, samples: Float64Array, otherCpuShare: number): LatencyRow {
  const sorted = Array.from(samples.sort());
  return { name, samples: sorted.length, p50Microseconds: percentile(sorted, 50), p99Microseconds: percentile(sorted, 99), otherCpuShare };
}

/**
 * Sends the same Access Evaluation to the bare server and to Mandate at each number of
 * connections, bare server first. Mandate authenticates the PEP's access token, verifies the
 * agent's delegated token, reads the roles and the policy version, evaluates the Cedar policy
 * and appends an `authzen.evaluation` audit entry for every request.
 */
async function measureAuthzen(input: PolicyBenchInput, ctx: ServerContext, bare: ChildServer, identifier: string): Promise<PolicyMeasurements['authzen']> {
  const { instance, records } = input;
  const pep = await createClientRecord(ctx, 'application', { name: 'Bench PEP', redirect_uris: ['http://127.0.0.1:9/pep'] }, 'bench');
  if (pep.client_secret === undefined) throw new Error('The PEP application was created without a client secret.');
  const pepToken = await clientCredentialsToken(instance.issuer, pep.client_id, pep.client_secret);
  const subjectToken = await delegatedTokenByCodeFlow({
    issuer: instance.issuer,
    agentId: records.agentId,
    agentSecret: records.agentSecret,
    redirectUri: records.redirectUri,
    resource: identifier,
    scope: `${SCOPE} ${PAY_ACTION}`,
    username: USERNAME,
    password: records.password,
  });

  const body = JSON.stringify({
    subject: { type: 'mandate_access_token', id: subjectToken },
    resource: { type: 'mandate_resource', id: identifier },
    action: { name: PAY_ACTION },
    context: PAY_CALL,
  });
  const request: LoadRequest = { method: 'POST', path: '/access/v1/evaluation', headers: { authorization: `Bearer ${pepToken}`, 'content-type': 'application/json' }, body };
  await expectDecisionTrue(input.mandate, request);
  await expectDecisionTrue(bare, request);

  const pairs: PolicyMeasurements['authzen'] = [];
  for (const connections of AUTHZEN_CONNECTIONS) {
    const bareRun = await input.measure('bare node:http', bare, 'bare node:http', connections, request);
    const mandateRun = await input.measure('Mandate AuthZEN', input.mandate, 'Mandate', connections, request);
    pairs.push({ bare: bareRun, mandate: mandateRun });
  }
  return pairs;
}

/** RFC 6749 §4.4: the PEP's own token for the Access Evaluation API, with client_secret_basic. */
async function clientCredentialsToken(issuer: string, clientId: string, secret: string): Promise<string> {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: basicAuthorization(clientId, secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${issuer}/access`, scope: 'mandate:evaluate' }),
  });
  const token = (await response.json()) as { access_token?: string; error?: string };
  if (response.status !== 200 || token.access_token === undefined) throw new Error(`The PEP token request failed: ${response.status} ${token.error ?? ''}`);
  return token.access_token;
}

/** Stops the run unless the server returns `decision: true`, because a denial takes a shorter path. */
async function expectDecisionTrue(server: ChildServer, request: LoadRequest): Promise<void> {
  const response = await fetch(new URL(request.path, server.url), { method: request.method, headers: request.headers, body: request.body ?? null });
  const text = await response.text();
  if (response.status !== 200 || (JSON.parse(text) as { decision?: unknown }).decision !== true) {
    throw new Error(`${server.name} did not allow the benchmark evaluation: ${response.status} ${text.slice(0, 300)}`);
  }
}
