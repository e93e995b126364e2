import { policySetTextToParts, policyToJson, preparsePolicySet, validate, type DetailedError, type SchemaJson } from './cedar-wasm.ts';
import { sha256Hex } from '../store/ids.ts';
import { findDepthProblem } from './policy-depth.ts';

/**
 * Mandate's own policy, added to every policy set: it permits everything, so Cedar denies only
 * through a `forbid`. Roles and token scope grant actions, and Cedar policies only add conditions.
 */
export const BASE_POLICY_ID = 'mandate.base-permit';
const BASE_POLICY = 'permit(principal, action, resource);';

/** Policy ids with this prefix are Mandate's own, so a saved policy may not use them. */
const RESERVED_ID_PREFIX = 'mandate.';

/** The annotation that turns a `forbid` into "needs the person's approval". */
export const APPROVAL_ANNOTATION = 'approval';

/** A tenant's policy, ready for `decide`. */
export type PolicySet =
  /** No policy, or one without any statement, so only roles and scope decide. */
  | { kind: 'none'; version: number }
  /** Parsed, validated, and preparsed in Cedar under `setId`. */
  | { kind: 'cedar'; version: number; setId: string; policyIds: readonly string[]; approvalPolicyIds: ReadonlySet<string> }
  /** A stored policy that no longer compiles. Every decision that reaches it is a deny. */
  | { kind: 'invalid'; version: number; errors: readonly string[] };

/** One problem Cedar or Mandate found in a policy, with its place in the source when known. */
export interface PolicyProblem {
  message: string;
  policy_id?: string;
  help?: string;
  /** 1-based line and column in the saved source. */
  line?: number;
  column?: number;
}

export type CompileResult = { ok: true; policySet: PolicySet; warnings: PolicyProblem[] } | { ok: false; errors: PolicyProblem[] };

interface PolicyPart {
  id: string;
  text: string;
  /** UTF-8 byte offset of the part in the source, because Cedar reports byte offsets. */
  byteOffset: number | undefined;
}

/**
 * Compiles a policy text for `decide`. It parses the text into single policies and names each
 * by its `@id` annotation, or `policy<N>` (Cedar's own name for the N-th policy). It checks
 * Mandate's rules: nesting within the limits of policy-depth.ts (before Cedar reads the text),
 * no templates, unique ids, `@approval` only on `forbid`. It validates the text
 * in Cedar's strict mode against `schema` and preparses it with the base permit. Problems are
 * returned, not thrown, so a caller can show them all to the administrator.
 */
export function compilePolicy(source: string, version: number, schema: SchemaJson<string>): CompileResult {
  const tooDeep = findDepthProblem(source);
  if (tooDeep !== undefined) return { ok: false, errors: [tooDeep] };
  try {
    return compileWithCedar(source, version, schema);
  } catch (error) {
    // A trap inside cedar-wasm can leave its memory damaged, so later calls may fail as well.
    const message = `Cedar failed while compiling the policy: ${(error as Error).message}. If other policies now fail the same way, restart Mandate.`;
    return { ok: false, errors: [{ message }] };
  }
}

function compileWithCedar(source: string, version: number, schema: SchemaJson<string>): CompileResult {
  const split = splitPolicies(source);
  if (!split.ok) return split;
  const { parts, approvalPolicyIds } = split;
  if (parts.length === 0) return { ok: true, policySet: { kind: 'none', version }, warnings: [] };

  const staticPolicies = Object.fromEntries(parts.map((part) => [part.id, part.text]));
  const validation = validate({ schema, policies: { staticPolicies }, validationSettings: { mode: 'strict' } });
  if (validation.type === 'failure') return { ok: false, errors: validation.errors.map((error) => describe(error)) };
  if (validation.validationErrors.length > 0) {
    return { ok: false, errors: validation.validationErrors.map((item) => describe(item.error, source, parts.find((part) => part.id === item.policyId))) };
  }
  const warnings = [...validation.validationWarnings.map((item) => describe(item.error, source, parts.find((part) => part.id === item.policyId))), ...validation.otherWarnings.map((error) => describe(error))];

  // Identical texts share one preparsed set, so an id never names two different policy sets.
  // NOTE: cedar-wasm 4.13 has no call to drop a preparsed set, so each distinct text compiled stays in memory until the process ends.
  const setId = `mandate-${sha256Hex(source)}`;
  const preparsed = preparsePolicySet(setId, { staticPolicies: { ...staticPolicies, [BASE_POLICY_ID]: BASE_POLICY } });
  if (preparsed.type === 'failure') return { ok: false, errors: preparsed.errors.map((error) => describe(error)) };

  return { ok: true, policySet: { kind: 'cedar', version, setId, policyIds: parts.map((part) => part.id), approvalPolicyIds }, warnings };
}

/** Splits the source into named policies and collects the ids of the `@approval` forbids. */
function splitPolicies(source: string): { ok: true; parts: PolicyPart[]; approvalPolicyIds: Set<string> } | { ok: false; errors: PolicyProblem[] } {
  const split = policySetTextToParts(source);
  if (split.type === 'failure') return { ok: false, errors: split.errors.map((error) => describe(error, source)) };
  if (split.policy_templates.length > 0) return { ok: false, errors: [{ message: 'Policy templates (policies with ?principal or ?resource slots) are not supported. Write static policies instead.' }] };

  const errors: PolicyProblem[] = [];
  const parts: PolicyPart[] = [];
  const approvalPolicyIds = new Set<string>();
  let searchFrom = 0;

  for (const [index, text] of split.policies.entries()) {
    const found = source.indexOf(text, searchFrom);
    const byteOffset = found === -1 ? undefined : Buffer.byteLength(source.slice(0, found));
    if (found !== -1) searchFrom = found + text.length;

    const json = policyToJson(text);
    if (json.type === 'failure') {
      errors.push(...json.errors.map((error) => describe(error)));
      continue;
    }
    const annotations = json.json.annotations ?? {};
    const id = annotations.id ?? `policy${index}`;
    const place = { source, part: { id, text, byteOffset } };

    if (id.startsWith(RESERVED_ID_PREFIX)) errors.push(located(`The policy id ${JSON.stringify(id)} is reserved: ids starting with "${RESERVED_ID_PREFIX}" belong to Mandate.`, place));
    else if (parts.some((part) => part.id === id)) errors.push(located(`The policy id ${JSON.stringify(id)} is used twice; give each policy its own @id.`, place));
    if (Object.hasOwn(annotations, APPROVAL_ANNOTATION)) {
      if (json.json.effect === 'forbid') approvalPolicyIds.add(id);
      else errors.push(located(`The policy ${JSON.stringify(id)} has @${APPROVAL_ANNOTATION} but is a permit; @${APPROVAL_ANNOTATION} only applies to forbid policies.`, place));
    }
    parts.push({ id, text, byteOffset });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, parts, approvalPolicyIds };
}

function located(message: string, place: { source: string; part: PolicyPart }): PolicyProblem {
  return { message, policy_id: place.part.id, ...lineAndColumn(place.source, place.part.byteOffset ?? -1) };
}

/**
 * Converts a Cedar error into a problem. Offsets in `error` are relative to `part` when one is
 * given (the text validated alone), else to `source`.
 */
function describe(error: DetailedError, source?: string, part?: PolicyPart): PolicyProblem {
  const problem: PolicyProblem = { message: error.message };
  if (part !== undefined) problem.policy_id = part.id;
  if (error.help !== null && error.help !== '') problem.help = error.help;

  const start = error.sourceLocations?.[0]?.start;
  if (source !== undefined && start !== undefined) {
    let offset = start;
    if (part !== undefined) offset = part.byteOffset === undefined ? -1 : part.byteOffset + start;
    Object.assign(problem, lineAndColumn(source, offset));
  }
  return problem;
}

function lineAndColumn(source: string, byteOffset: number): { line?: number; column?: number } {
  if (byteOffset < 0) return {};
  const before = Buffer.from(source, 'utf8').subarray(0, byteOffset).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
}

/** Formats problems as one line each: `line 3, column 5: message (help)`. */
export function formatProblems(problems: readonly PolicyProblem[]): string[] {
  return problems.map((problem) => {
    const place = problem.line === undefined ? '' : `line ${problem.line}, column ${problem.column ?? 1}: `;
    const help = problem.help === undefined ? '' : ` (${problem.help})`;
    return `${place}${problem.message}${help}`;
  });
}
