import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { formatProblems } from '../policy/cedar-compile.ts';
import { readPolicy } from '../policy/policy-store.ts';
import { compileTestPolicy, describeDecision, describeExpectation, runTestCases } from '../policy/test-cases.ts';
import { parseTestFile, type ParsedTestFile } from '../policy/test-cases-file.ts';
import { UsageError, parseCommand, printJson, readJsonFile, withContext, type CliIo } from './command.ts';

/**
 * `mandate policy test FILE [--json]`: decides each case of a JSON test file with the real
 * decision function and Cedar, and prints each case whose result differs from the expected one.
 * Exits with 0 when every case matches and 1 otherwise. A file that names its policy needs no
 * database, and one without a policy tests the policy in force.
 */
export async function runPolicyTest(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(args, { json: { type: 'boolean' } }, ['file']);
  const file = positionals[0] ?? '';
  const parsed = parseTestFile(readJsonFile(file, 'the policy test file'), `policy test file ${file}`);
  const policy = await policyUnderTest(parsed, file);

  const compiled = compileTestPolicy(policy.source, policy.version, parsed.resources);
  if (!compiled.ok) throw new UsageError(`The policy ${policy.label} is invalid against the resources of ${file}: ${formatProblems(compiled.errors).join(' ')}`);
  for (const line of formatProblems(compiled.warnings)) io.stderr(`warning: ${line}\n`);

  const outcomes = runTestCases(parsed.cases, compiled.policySet);
  const differing = outcomes.filter((outcome) => !outcome.matches);

  if (values.json === true) {
    printJson(io, {
      policy: policy.label,
      cases: outcomes.length,
      differing: differing.map((outcome) => ({ name: outcome.name, expected: outcome.expected, actual: { decision: outcome.actual.decision, reasons: outcome.actual.reasons } })),
    });
  } else {
    for (const outcome of differing) io.stdout(`DIFF ${outcome.name}: expected ${describeExpectation(outcome.expected)}, got ${describeDecision(outcome.actual)}\n`);
    if (differing.length === 0) io.stdout(`All ${outcomes.length} cases match their expected decisions (policy: ${policy.label}).\n`);
    else io.stdout(`${differing.length} of ${outcomes.length} cases differ from their expected decisions (policy: ${policy.label}).\n`);
  }
  return differing.length === 0 ? 0 : 1;
}

/** Reads the policy that the file names (inline or a .cedar file beside it), or else the policy in force. */
async function policyUnderTest(parsed: ParsedTestFile, file: string): Promise<{ source: string; version: number; label: string }> {
  const policy = parsed.policy;
  if (policy !== undefined && 'source' in policy) return { source: policy.source, version: 0, label: `inline in ${file}` };

  if (policy !== undefined) {
    const path = resolve(dirname(file), policy.file);
    try {
      return { source: readFileSync(path, 'utf8'), version: 0, label: policy.file };
    } catch (error) {
      throw new UsageError(`Cannot read the policy file ${path} named in ${file}: ${(error as NodeJS.ErrnoException).code ?? 'read failed'}.`);
    }
  }

  const inForce = await withContext((ctx) => readPolicy(ctx));
  return { source: inForce.source, version: inForce.version, label: `version ${inForce.version} in force` };
}
