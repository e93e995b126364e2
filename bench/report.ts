import { readFileSync } from 'node:fs';
import { availableParallelism, release, totalmem } from 'node:os';
import type { LoadResult } from './load.ts';
import { renderPolicySection, type PolicyReport } from './policy-report.ts';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  os: string;
}

/** One load phase against one server at one number of connections. */
export interface Measurement {
  target: string;
  connections: number;
  result: LoadResult;
  /** Peak resident set size of `process` during the phase (warm-up included), in bytes. */
  peakRssBytes: number;
  process: string;
  /** Share (0 to 1) of the machine's CPU time that processes outside the benchmark used during the phase. */
  otherCpuShare: number;
}

export interface BenchReport {
  date: Date;
  command: string;
  machine: Machine;
  warmupSeconds: number;
  durationSeconds: number;
  tokens: Array<{ mandate: Measurement; baseline: Measurement }>;
  gateway: Array<{ direct: Measurement; gateway: Measurement }>;
  policy: PolicyReport;
}

export function describeMachine(): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  return {
    cpus: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    os: `${/^PRETTY_NAME="?([^"\n]+)"?$/m.exec(osRelease)?.[1] ?? 'Linux'}, kernel ${release()}`,
  };
}

/** Lists every measured phase in the order of the run. */
function phasesInOrder(report: BenchReport): Measurement[] {
  return [...report.tokens.flatMap((pair) => [pair.baseline, pair.mandate]), ...report.gateway.flatMap((pair) => [pair.direct, pair.gateway])];
}

/** Prints every measured phase as one aligned table on stdout. */
export function printTable(report: BenchReport): void {
  const header = ['target', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'requests', 'errors', 'peak RSS MiB (process)', 'other CPU'];
  const rows = phasesInOrder(report).map((m) => [
    m.target,
    String(m.connections),
    m.result.requestsPerSecond.toFixed(0),
    m.result.p50Ms.toFixed(2),
    m.result.p99Ms.toFixed(2),
    String(m.result.requests),
    String(m.result.errors),
    `${mebibytes(m.peakRssBytes)} (${m.process})`,
    percent(m.otherCpuShare),
  ]);
  const widths = header.map((cell, index) => Math.max(cell.length, ...rows.map((row) => (row[index] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}

/** Renders docs/benchmarks.md from one run. */
export function renderMarkdown(report: BenchReport): string {
  const { machine } = report;
  const peakToken = Math.max(...report.tokens.map((pair) => pair.mandate.peakRssBytes));
  const peakGateway = Math.max(...report.gateway.map((pair) => pair.gateway.peakRssBytes));
  const peakBaseline = Math.max(...report.tokens.map((pair) => pair.baseline.peakRssBytes));

  const tokenRows = report.tokens.map(({ mandate, baseline }) =>
    cells([
      String(mandate.connections),
      mandate.result.requestsPerSecond.toFixed(0),
      ms(mandate.result.p50Ms),
      ms(mandate.result.p99Ms),
      baseline.result.requestsPerSecond.toFixed(0),
      ms(baseline.result.p50Ms),
      ms(baseline.result.p99Ms),
      `${((100 * mandate.result.requestsPerSecond) / baseline.result.requestsPerSecond).toFixed(0)} %`,
    ]),
  );
  const gatewayRows = report.gateway.map(({ direct, gateway }) =>
    cells([
      String(gateway.connections),
      direct.result.requestsPerSecond.toFixed(0),
      ms(direct.result.p50Ms),
      ms(direct.result.p99Ms),
      gateway.result.requestsPerSecond.toFixed(0),
      ms(gateway.result.p50Ms),
      ms(gateway.result.p99Ms),
      ms(gateway.result.p50Ms - direct.result.p50Ms),
      ms(gateway.result.p99Ms - direct.result.p99Ms),
    ]),
  );

  const otherRows = phasesInOrder(report).map((m) => cells([m.target, String(m.connections), percent(m.otherCpuShare)]));

  return `# Benchmarks

\`npm run bench\` (the script \`bench/run.ts\`) measures three things on one machine in one run. The
first is how many \`client_credentials\` access tokens Mandate issues per second, next to a bare
\`node:http\` token endpoint that does the same client authentication and signing. The second is
how much latency the credential gateway adds to a call over calling the upstream API directly.
The third is the cost of a policy decision: its latency in process, and AuthZEN evaluations per
second over HTTP next to a bare \`node:http\` server.
The numbers below come from one run of that script and describe this machine only. Run the
script again before comparing a change.

## Command

\`\`\`
${report.command}
\`\`\`

The script starts every server as a child process on 127.0.0.1: Mandate (\`mandate serve\` on
SQLite in a temporary data directory, log level \`warn\`, rate limit raised out of the way), the
baseline token endpoint (\`bench/baseline-server.ts\`) and the upstream API
(\`bench/upstream-server.ts\`). It creates the records with the \`mandate\` CLI and obtains the
delegated token through the authorization code flow over HTTP (sign-in form, consent form,
\`/token\`). The load generator (\`bench/load.ts\`, undici \`Pool\`) runs in the script's own
process. It keeps the given number of keep-alive connections busy, each with one request in
flight, for a warm-up that is not recorded and then for the measured window. Any response
with an unexpected status stops the run with an error.

Run on ${report.date.toISOString().slice(0, 10)}.

## Machine

| | |
|---|---|
| CPUs (\`nproc\`) | ${machine.cpus} |
| CPU model | ${machine.cpuModel} |
| Memory | ${machine.memoryGiB.toFixed(1)} GiB |
| Node.js | ${machine.node} |
| OS | ${machine.os} |

## Settings

Each row is a warm-up of ${report.warmupSeconds} s that is not recorded, then ${report.durationSeconds} s measured, with the
number of connections listed. Latency runs from sending the request to reading the whole response
body. p50 and p99 are nearest-rank percentiles over every request of the measured window.

## Token endpoint: \`client_credentials\`

| connections | Mandate tokens/s | p50 ms | p99 ms | baseline tokens/s | p50 ms | p99 ms | Mandate / baseline |
|---:|---:|---:|---:|---:|---:|---:|---:|
${tokenRows.join('\n')}

The baseline shows what this machine does with the work that every token needs and nothing
else. It parses the form body, checks \`client_secret_basic\` by SHA-256 digest and
\`timingSafeEqual\`, and signs the same claims with jose EdDSA. It keeps its one client in memory and returns the same JSON. Mandate
does the same work and, for each token, also reads the client, resource and roles from SQLite,
decides the scope against the agent's current roles, and appends a hash-chained audit entry in a
transaction. The last column is the share of the baseline's throughput that Mandate reaches.

## Gateway overhead

| connections | direct req/s | p50 ms | p99 ms | gateway req/s | p50 ms | p99 ms | added p50 ms | added p99 ms |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${gatewayRows.join('\n')}

"Direct" calls \`GET /api/items\` on the upstream with its credential. "Gateway" calls
\`GET /gateway/bench-items/items\` on Mandate with a delegated access token. For each call, Mandate
verifies the token, checks the delegation and the current roles of the person and the agent,
decrypts the stored upstream credential, appends the call to the audit log, forwards the request
and appends the outcome. The added latency is the gateway's percentile minus the direct one.
With one connection it is the cost of a single call. With 16 connections Mandate runs at its
maximum throughput, so most of the added latency is time that requests wait in its queue.

${renderPolicySection(report.policy)}
## Memory

Peak resident set size (\`VmHWM\` in \`/proc/<pid>/status\`), reset before each row and read after
it, warm-up included. Each line shows the highest value over the rows of that load.

| process | load | peak RSS |
|---|---|---:|
| Mandate | token endpoint, ${connectionList(report.tokens.map((pair) => pair.mandate))} connections | ${mebibytes(peakToken)} MiB |
| Mandate | gateway, ${connectionList(report.gateway.map((pair) => pair.gateway))} connections | ${mebibytes(peakGateway)} MiB |
| baseline token endpoint | token endpoint, ${connectionList(report.tokens.map((pair) => pair.baseline))} connections | ${mebibytes(peakBaseline)} MiB |

## Other work on the machine

Share of the machine's CPU time, over all CPUs, that processes outside the benchmark used during
each row (from \`/proc/stat\` minus the time of the load generator and the three servers):

| target | connections | other processes |
|---|---:|---:|
${otherRows.join('\n')}

## Limits of these numbers

- The load generator runs on the same CPUs as the server under test. It needs more CPU time the
  faster the server responds, so on a machine with few cores it probably holds the baseline back
  more than Mandate. The share in the token table is then, if anything, in Mandate's favour.
- Other processes on the machine take CPU time from the servers and the load generator. Rows with
  a large share under "Other work on the machine" show less throughput and more latency than the
  same machine would when idle.
- Mandate runs on SQLite. PostgreSQL, which deployments with more than one process use, is not
  measured here.
- All servers run TypeScript through tsx, as \`npm start\` does. The memory of tsx's loader
  counts in each process's peak, but not that of the esbuild process it starts.
- Each row is one measurement with no repetition. Run the script a few times to see how much the
  numbers vary on your machine.
`;
}

function connectionList(measurements: Measurement[]): string {
  return measurements.map((m) => String(m.connections)).join(' and ');
}

function cells(values: string[]): string {
  return `| ${values.join(' | ')} |`;
}

function percent(share: number): string {
  return `${(100 * share).toFixed(0)} %`;
}

function ms(value: number): string {
  return value.toFixed(2);
}

function mebibytes(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}
