import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { Problem } from '../http/problem.ts';
import { compilePolicy, formatProblems, type PolicyProblem } from '../policy/cedar-compile.ts';
import { MAX_POLICY_SOURCE_BYTES, currentPolicyVersion, insertPolicyVersion, readPolicy, tenantCedarSchema, type StoredPolicy } from '../policy/policy-store.ts';
import { sha256Hex } from '../store/ids.ts';
import { auditedTransaction } from './audited-transaction.ts';
import { rejectDuplicates } from './constraint-errors.ts';
import { parseInput } from './input.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

export const setPolicyBody = z
  .strictObject({
    source: z
      .string()
      .refine((text) => Buffer.byteLength(text) <= MAX_POLICY_SOURCE_BYTES, `must be at most ${MAX_POLICY_SOURCE_BYTES} bytes of UTF-8`)
      .describe('Cedar policy text: forbid policies, optionally annotated @id("name") and @approval; empty for none'),
  })
  .describe('A new version of the tenant policy');

/** The policy in force, with the problems it has against today's resources (none when it still validates). */
export interface PolicyRecord extends StoredPolicy {
  source_sha256: string;
  errors: PolicyProblem[];
  warnings: PolicyProblem[];
}

/** Reads the policy in force (version 0 with an empty source when none was saved) and validates it again. */
export async function showPolicy(ctx: Ctx): Promise<PolicyRecord> {
  const policy = await readPolicy(ctx);
  const result = compilePolicy(policy.source, policy.version, await tenantCedarSchema(ctx));
  return { ...policy, source_sha256: sha256Hex(policy.source), errors: result.ok ? [] : result.errors, warnings: result.ok ? result.warnings : [] };
}

/**
 * Validates a policy against the schema of the tenant's resources and saves it as the next
 * version, with its `policy.updated` audit entry in the same transaction. An invalid policy is
 * rejected with Cedar's messages as a 422 problem, and the version in force stays.
 */
export async function updatePolicy(ctx: Ctx, input: unknown, actor: string): Promise<PolicyRecord> {
  const { source } = parseInput(setPolicyBody, input);

  const result = compilePolicy(source, 0, await tenantCedarSchema(ctx));
  if (!result.ok) {
    const inForce = await currentPolicyVersion(ctx);
    const lines = formatProblems(result.errors);
    throw new Problem(422, 'Unprocessable Content', `The policy is invalid and was not saved, so version ${inForce} stays in force. ${lines.join(' ')}`, {
      type: 'urn:mandate:problem:invalid-policy',
      extra: { errors: result.errors, version_in_force: inForce },
    });
  }

  const saved = await rejectDuplicates('Another policy version was saved at the same time; read the policy in force and save again.', () =>
    auditedTransaction(ctx, async (trx) => {
      const policy = await insertPolicyVersion(trx, ctx.tenantId, source, actor);
      const event = { event: 'policy.updated', actor, target: { policy_version: policy.version }, outcome: { result: 'saved' }, reason: { source_sha256: sha256Hex(source) } };
      return { result: policy, events: [event] };
    }),
  );
  return { ...saved, source_sha256: sha256Hex(source), errors: [], warnings: result.warnings };
}
