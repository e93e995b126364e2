import type { PolicyMeasurements } from './policy-bench.ts';
import { BENCH_POLICY } from './policy-bench.ts';
import { PAY_ACTION, RESOURCE_NAME } from './mandate-process.ts';
import type { Machine } from './report.ts';

/** Markers around the policy section of docs/benchmarks.md, so that `--only policy` can replace it alone. */
const SECTION_START = '<!-- policy benchmarks: start -->';
const SECTION_END = '<!-- policy benchmarks: end -->';

/** The heading before which a run with `--only policy` inserts the section when the page has none yet. */
const INSERT_BEFORE = '## Memory';

export interface PolicyReport {
  date: Date;
  command: string;
  machine: Machine;
  warmupSeconds: number;
  durationSeconds: number;
  measurements: PolicyMeasurements;
}

/** Prints the policy rows on stdout. */
export function printPolicyTable(report: PolicyReport): void {
  const rows = [
    ...report.measurements.latency.map((row) => [row.name, '-', `p50 ${row.p50Microseconds.toFixed(1)} µs`, `p99 ${row.p99Microseconds.toFixed(1)} µs`, String(row.samples), percent(row.otherCpuShare)]),
    ...report.measurements.authzen.flatMap((pair) =>
      [pair.bare, pair.mandate].map((m) => [m.target, String(m.connections), `p50 ${m.result.p50Ms.toFixed(2)} ms`, `p99 ${m.result.p99Ms.toFixed(2)} ms`, `${m.result.requestsPerSecond.toFixed(0)} req/s`, percent(m.otherCpuShare)]),
    ),
  ];
  const header = ['row', 'conns', 'p50', 'p99', 'samples or rate', 'other CPU'];
  const widths = header.map((cell, index) => Math.max(cell.length, ...rows.map((row) => (row[index] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}

/** Renders the policy section of docs/benchmarks.md, with its own command, date and machine. */
export function renderPolicySection(report: PolicyReport): string {
  const { machine, measurements } = report;
  const latencyRows = measurements.latency.map((row) => cells([row.name, String(row.samples), row.p50Microseconds.toFixed(1), row.p99Microseconds.toFixed(1), percent(row.otherCpuShare)]));
  const authzenRows = measurements.authzen.map(({ bare, mandate }) =>
    cells([
      String(mandate.connections),
      mandate.result.requestsPerSecond.toFixed(0),
      mandate.result.p50Ms.toFixed(2),
      mandate.result.p99Ms.toFixed(2),
      bare.result.requestsPerSecond.toFixed(0),
      bare.result.p50Ms.toFixed(2),
      bare.result.p99Ms.toFixed(2),
      `${((100 * mandate.result.requestsPerSecond) / bare.result.requestsPerSecond).toFixed(1)} %`,
    ]),
  );
  const authzenOther = measurements.authzen.flatMap(({ bare, mandate }) => [bare, mandate]).map((m) => `${m.target} ${m.connections}: ${percent(m.otherCpuShare)}`);

  return `${SECTION_START}
## Policy decisions

Measured on ${report.date.toISOString().slice(0, 10)} with \`${report.command}\` on ${machine.cpus} CPUs (\`nproc\`), ${machine.cpuModel}, Node.js ${machine.node}. Each row is a warm-up of ${report.warmupSeconds} s that is not recorded, then ${report.durationSeconds} s measured.
\`npm run bench -- --only policy\` measures this section alone and replaces only it on this page.

### Latency of one decision, in process

| decision | samples | p50 µs | p99 µs | other processes |
|---|---:|---:|---:|---:|
${latencyRows.join('\n')}

The benchmark's own process makes one decision at a time and times each call alone. Every row
decides the same call: \`${PAY_ACTION}\` on \`${RESOURCE_NAME}\` with \`{"amount":500,"currency":"EUR"}\`, \`POST /payments\`,
by an agent for a person who both hold a role granting it, with a token that carries it.
\`decide()\` is the pure decision function. It gets the permissions and the compiled policy as
arguments, so its rows contain no I/O. The first row has no policy, so it checks the token scope
and the roles and binds the declared arguments. \`decideCall()\` is what the gateway and the
AuthZEN endpoint call. It reads the current roles of the person and the agent and the version of
the policy in force from SQLite (three queries on the benchmark's temporary database) and then
calls \`decide()\`. The policy is compiled once per version, so its compilation is not in these
rows. "Other processes" is the share of the machine's CPU time that processes outside the
benchmark used during the row. Mandate stops V8 from inlining calls into WebAssembly
(\`--no-turbo-inline-js-wasm-calls\`, set in \`policy/cedar-wasm.ts\`), because with that inlining
Node.js 20 aborted during the Cedar rows; every row here is measured with the flag set.

The Cedar policy of these rows and of the AuthZEN rows has four \`forbid\` policies. The call passes
all of them, so Cedar evaluates every condition that applies to \`pay\` and the decision is \`allow\`:

\`\`\`cedar
${BENCH_POLICY.trim()}
\`\`\`

### AuthZEN evaluations over HTTP

| connections | Mandate evaluations/s | p50 ms | p99 ms | bare node:http req/s | p50 ms | p99 ms | Mandate / bare |
|---:|---:|---:|---:|---:|---:|---:|---:|
${authzenRows.join('\n')}

Both servers receive the same \`POST /access/v1/evaluation\` request, with the same body and
headers, from the load generator described above. The bare server (\`bench/bare-http-server.ts\`) is
\`node:http\` that reads the body, parses it as JSON and returns \`{"decision":true}\`. It shows
the most requests per second that this machine's Node.js and the load generator manage for this
request. For each evaluation, Mandate verifies the PEP's access token and the agent's delegated
token in \`subject.id\`, and checks the token's delegation. It then reads the roles and the policy
version and evaluates the Cedar policy above. Before it responds, it appends an
\`authzen.evaluation\` entry to the hash-chained audit log in a transaction. Share of the CPU time
used by other processes during each row: ${authzenOther.join(', ')}.

Limits: each row is one measurement with no repetition, and other processes on the machine take
CPU time from it (see the shares above), so compare rows of one run only. The AuthZEN rows share
the machine's CPUs with the load generator, as the token rows do. Only SQLite is measured.
${SECTION_END}
`;
}

/**
 * Replaces the policy section of an existing docs/benchmarks.md, or inserts it before the memory
 * section when the page has none yet. Throws when the page has neither, so that a partial run
 * never writes a page without the other benchmarks' context.
 */
export function replacePolicySection(page: string, section: string): string {
  const start = page.indexOf(SECTION_START);
  const end = page.indexOf(SECTION_END);
  if (start !== -1 && end > start) return `${page.slice(0, start)}${section}${page.slice(end + SECTION_END.length).replace(/^\n/, '')}`;

  const insertAt = page.indexOf(INSERT_BEFORE);
  if (insertAt === -1) throw new Error(`The benchmark page has no policy section and no "${INSERT_BEFORE}" heading to insert one before; run the full benchmark (npm run bench) instead.`);
  return `${page.slice(0, insertAt)}${section}\n${page.slice(insertAt)}`;
}

function cells(values: string[]): string {
  return `| ${values.join(' | ')} |`;
}

function percent(share: number): string {
  return `${(100 * share).toFixed(0)} %`;
}
