import { readFileSync } from 'node:fs';
import { showPolicy, updatePolicy } from '../admin/policy.ts';
import { formatProblems } from '../policy/cedar-compile.ts';
import { UsageError, cliActor, formatTime, parseCommand, printJson, subcommand, withContext, type CliIo } from './command.ts';
import { runPolicyReplay } from './policy-replay.ts';
import { runPolicyTest } from './policy-test.ts';

/**
 * `mandate policy show|set|test|replay`. `show` prints the Cedar text in force on stdout, so it
 * can be redirected to a file, edited and given to `set FILE`. The version goes to stderr.
 * `test` and `replay` check a policy before it is saved (see policy-test.ts and policy-replay.ts).
 */
export async function runPolicy(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('policy', args, ['show', 'set', 'test', 'replay']);
  if (name === 'test') return runPolicyTest(rest, io);
  if (name === 'replay') return runPolicyReplay(rest, io);

  if (name === 'set') {
    const { values, positionals } = parseCommand(rest, { json: { type: 'boolean' } }, ['file']);
    const file = positionals[0] ?? '';
    const source = readPolicyFile(file);
    const saved = await withContext((ctx) => updatePolicy(ctx, { source }, cliActor()));

    if (values.json === true) printJson(io, saved);
    else io.stdout(`Saved policy version ${saved.version} from ${file}.\n`);
    for (const line of formatProblems(saved.warnings)) io.stderr(`warning: ${line}\n`);
    return 0;
  }

  const { values } = parseCommand(rest, { json: { type: 'boolean' } }, []);
  const policy = await withContext((ctx) => showPolicy(ctx));
  if (values.json === true) {
    printJson(io, policy);
    return 0;
  }

  if (policy.version === 0) io.stderr('No policy was saved (version 0): roles and token scope alone decide.\n');
  else io.stderr(`Policy version ${policy.version}, saved ${formatTime(policy.created_at)} by ${policy.created_by ?? '-'}.\n`);
  if (policy.errors.length > 0) io.stderr('The policy in force no longer validates against the resources, so every call it applies to is denied:\n');
  for (const line of formatProblems(policy.errors)) io.stderr(`error: ${line}\n`);
  if (policy.source !== '') io.stdout(policy.source.endsWith('\n') ? policy.source : `${policy.source}\n`);
  return 0;
}

function readPolicyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`Cannot read the policy file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'read failed'}.`);
  }
}
