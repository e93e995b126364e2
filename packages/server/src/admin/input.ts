import type { z } from 'zod';
import { Problem } from '../http/problem.ts';

/** One rejected field, in the shape of the `invalid-params` member from the RFC 9457 §3 example. */
export interface InvalidParam {
  name: string;
  reason: string;
}

/**
 * Validates admin input (an HTTP body, query or CLI arguments) against its schema and returns the
 * typed value. Every violation becomes a 400 problem that names the field and the reason.
 */
export function parseInput<Schema extends z.ZodType>(schema: Schema, input: unknown, where = 'input'): z.output<Schema> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;

  const invalid = describeIssues(result.error.issues);
  const summary = invalid.map((param) => `${param.name}: ${param.reason}`).join('; ');
  throw new Problem(400, 'Bad Request', `Invalid ${where}. ${summary}.`, {
    type: 'urn:mandate:problem:invalid-input',
    extra: { 'invalid-params': invalid },
  });
}

function describeIssues(issues: readonly z.core.$ZodIssue[]): InvalidParam[] {
  const params: InvalidParam[] = [];
  for (const issue of issues) {
    const name = issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) params.push({ name: name === '(root)' ? key : `${name}.${key}`, reason: 'is not a known field' });
      continue;
    }
    params.push({ name, reason: issue.message });
  }
  return params;
}
