/**
 * The file format of `mandate policy test`: a policy, the resources and roles it is tested
 * with, and decision cases with their expected results. The file is self-contained, so a
 * repository of policies can run its tests in CI without a Mandate database. docs/policy.md
 * ("Testing a policy") describes the format for policy authors.
 */
import { z } from 'zod';
import { parseInput } from '../admin/input.ts';
import { badRequest } from '../http/problem.ts';
import { normalizeUpstreamPath } from '../gateway/path.ts';
import { ARGUMENT_TYPES, MAX_DECLARED_ARGUMENTS, isArgumentName, type ArgumentDeclarations } from './arguments.ts';
import type { DecisionResult, DeniedBy } from './decision.ts';
import type { Permission } from './permissions.ts';

const DECISIONS = ['allow', 'deny', 'approval_required'] as const satisfies readonly DecisionResult[];
const DENIED_BY = ['principal_missing', 'token_scope', 'agent_roles', 'delegating_agent_roles', 'user_roles', 'argument_type', 'policy', 'policy_error'] as const satisfies readonly DeniedBy[];

/** RFC 6749 §3.3 scope-token characters without `*`, as for the actions of registered resources. */
const ACTION_NAME = /^[\x21\x23-\x29\x2B-\x5B\x5D-\x7E]{1,100}$/;
/** A role's action pattern: an action name, `*`, or a prefix ending in `*`. */
const ACTION_PATTERN = /^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/;
const RESOURCE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ROLE_NAME = /^[A-Za-z0-9._:-]{1,100}$/;

const argumentDeclarations = z.record(z.string(), z.enum(ARGUMENT_TYPES, `must be one of ${ARGUMENT_TYPES.join(', ')}`)).superRefine((declarations, check) => {
  const names = Object.keys(declarations);
  if (names.length > MAX_DECLARED_ARGUMENTS) check.addIssue({ code: 'custom', message: `must declare at most ${MAX_DECLARED_ARGUMENTS} arguments` });
  for (const name of names.filter((candidate) => !isArgumentName(candidate))) {
    check.addIssue({ code: 'custom', path: [name], message: 'must be an identifier of at most 64 letters, digits or _ that starts with a letter or a single _ and is not a Cedar reserved word' });
  }
});

const action = z.strictObject({
  name: z.string().regex(ACTION_NAME, 'must be a scope token (printable ASCII without space, ", \\ or *)'),
  requires_approval: z.boolean().default(false),
  arguments: argumentDeclarations.default({}),
});

const resource = z.strictObject({
  /** RFC 8707 §2: an absolute URI without a fragment. */
  identifier: z.string().refine((value) => URL.canParse(value) && !value.includes('#'), 'must be an absolute URI without a fragment'),
  name: z.string().regex(RESOURCE_NAME, 'must be 1 to 63 lowercase letters, digits or -, starting with a letter or digit'),
  actions: z.array(action).refine((list) => new Set(list.map((item) => item.name)).size === list.length, 'must not repeat an action name'),
});

/** `"<resource identifier or *> <action or *>"`, as `mandate roles create --permission` takes it. */
const permission = z.string().transform((text, check) => {
  const parts = text.trim().split(/\s+/);
  const [resourcePart = '', actionPart = ''] = parts;
  if (parts.length !== 2 || !(resourcePart === '*' || URL.canParse(resourcePart)) || !ACTION_PATTERN.test(actionPart)) {
    check.addIssue({ code: 'custom', message: 'must be "<resource identifier or *> <action or *>"' });
    return z.NEVER;
  }
  return { resource: resourcePart, action: actionPart };
});

const party = z.strictObject({
  id: z.string().min(1).max(2000),
  roles: z.array(z.string()).default([]),
});

/** The members a case may take from `defaults`. `null` in a case removes a default party or scope. */
const caseInputs = {
  person: party.nullable().optional(),
  agent: party.nullable().optional(),
  /** The agents that handed the token on to `agent`, the nearest first. */
  delegating_agents: z.array(party).max(16).nullable().optional(),
  token_scope: z.array(z.string()).nullable().optional(),
  resource: z.string().optional(),
  action: z.string().optional(),
  arguments: z.record(z.string(), z.unknown()).optional(),
  method: z.string().regex(/^[A-Z]{1,16}$/, 'must be an upper-case HTTP method, as the request line carries it').optional(),
  /** The path as the gateway receives it; it is decoded and checked as the gateway does. */
  path: z
    .string()
    .startsWith('/', 'must start with /')
    .refine((value) => !value.includes('?'), 'must not contain a query: put it in query')
    .transform((value, check) => {
      try {
        return normalizeUpstreamPath(value).decoded;
      } catch (error) {
        check.addIssue({ code: 'custom', message: `is a path the gateway rejects: ${(error as Error).message.replace(/\.$/, '')}` });
        return z.NEVER;
      }
    })
    .optional(),
  query: z.string().optional(),
};

const expectation = z.strictObject({
  decision: z.enum(DECISIONS, `must be one of ${DECISIONS.join(', ')}`),
  denied_by: z.enum(DENIED_BY, `must be one of ${DENIED_BY.join(', ')}`).optional(),
  policies: z.array(z.string()).optional(),
});

const testCase = z.strictObject({ name: z.string().min(1).max(200), ...caseInputs, expect: expectation });

/** The source of the policy under test: inline text or a file. When absent, the policy in force in the configured database is tested. */
const policySource = z.union([z.strictObject({ source: z.string() }), z.strictObject({ file: z.string().min(1) })]);

export const policyTestFile = z
  .strictObject({
    policy: policySource.optional(),
    resources: z.array(resource).min(1),
    roles: z.record(z.string().regex(ROLE_NAME, 'must be 1 to 100 letters, digits or . _ : -'), z.array(permission)).default({}),
    defaults: z.strictObject(caseInputs).default({}),
    cases: z
      .array(testCase)
      .min(1)
      .refine((list) => new Set(list.map((item) => item.name)).size === list.length, 'must not repeat a case name'),
  })
  .superRefine((file, check) => {
    const names = file.resources.map((item) => item.name);
    const identifiers = file.resources.map((item) => item.identifier);
    if (new Set(names).size !== names.length) check.addIssue({ code: 'custom', path: ['resources'], message: 'must not repeat a resource name' });
    if (new Set(identifiers).size !== identifiers.length) check.addIssue({ code: 'custom', path: ['resources'], message: 'must not repeat a resource identifier' });
  });

export type PolicyTestFile = z.output<typeof policyTestFile>;
export type ExpectedDecision = z.output<typeof expectation>;

/** A resource of the file, with its actions as the decision point reads them. */
export interface TestResource {
  identifier: string;
  name: string;
  actions: Array<{ name: string; requiresApproval: boolean; arguments: ArgumentDeclarations }>;
}

/** A person or an agent of one case, with the permissions of its roles. */
export interface TestParty {
  id: string;
  permissions: Permission[];
}

/** One case with its defaults applied and its names resolved. */
export interface ResolvedCase {
  name: string;
  person: TestParty | undefined;
  agent: TestParty | undefined;
  delegatingAgents: TestParty[];
  tokenScope: string[] | undefined;
  resource: TestResource;
  action: TestResource['actions'][number];
  arguments: Record<string, unknown> | undefined;
  method: string | undefined;
  path: string | undefined;
  query: string | undefined;
  expect: ExpectedDecision;
}

export interface ParsedTestFile {
  policy: { source: string } | { file: string } | undefined;
  resources: TestResource[];
  cases: ResolvedCase[];
}

/**
 * Validates a parsed JSON test file and resolves each case: defaults applied, the resource
 * found by name or identifier, the action found in it, and role names replaced by their
 * permissions. Any problem throws a 400 Problem that names the member, such as
 * `cases.2.resource: no resource of the file is named "mail"`.
 */
export function parseTestFile(json: unknown, where: string): ParsedTestFile {
  const file = parseInput(policyTestFile, json, where);
  const resources: TestResource[] = file.resources.map((item) => ({
    identifier: item.identifier,
    name: item.name,
    actions: item.actions.map((entry) => ({ name: entry.name, requiresApproval: entry.requires_approval, arguments: entry.arguments })),
  }));

  const problems: string[] = [];
  const cases = file.cases.map((raw, index) => {
    const merged = { ...file.defaults, ...withoutUndefined(raw) };
    const at = (member: string) => `cases.${index}.${member}`;

    const resourceName = merged.resource;
    const found = resourceName === undefined ? undefined : resources.find((item) => item.name === resourceName || item.identifier === resourceName);
    if (resourceName === undefined) problems.push(`${at('resource')}: is missing, in the case and in defaults`);
    else if (found === undefined) problems.push(`${at('resource')}: no resource of the file has the name or identifier ${JSON.stringify(resourceName)}`);

    const actionName = merged.action;
    const foundAction = found?.actions.find((item) => item.name === actionName);
    if (actionName === undefined) problems.push(`${at('action')}: is missing, in the case and in defaults`);
    else if (found !== undefined && foundAction === undefined) problems.push(`${at('action')}: the resource ${found.name} has no action ${JSON.stringify(actionName)}`);

    const person = resolveParty(merged.person, file.roles, at('person'), problems);
    const agent = resolveParty(merged.agent, file.roles, at('agent'), problems);
    const delegatingAgents = (merged.delegating_agents ?? []).map((item, position) => resolveParty(item, file.roles, at(`delegating_agents.${position}`), problems) as TestParty);
    return {
      name: raw.name,
      person,
      agent,
      delegatingAgents,
      tokenScope: merged.token_scope ?? undefined,
      resource: found,
      action: foundAction,
      arguments: merged.arguments,
      method: merged.method,
      path: merged.path,
      query: merged.query === '' ? undefined : merged.query,
      expect: raw.expect,
    };
  });
  if (problems.length > 0) throw badRequest(`Invalid ${where}. ${problems.join('; ')}.`);

  // Every case found its resource and action, or a problem was reported above.
  return { policy: file.policy, resources, cases: cases as ResolvedCase[] };
}

function resolveParty(value: { id: string; roles: string[] } | null | undefined, roles: Record<string, Array<{ resource: string; action: string }>>, where: string, problems: string[]): TestParty | undefined {
  if (value === null || value === undefined) return undefined;

  const permissions: Permission[] = [];
  for (const role of value.roles) {
    const granted = Object.hasOwn(roles, role) ? roles[role] : undefined;
    if (granted === undefined) problems.push(`${where}.roles: the role ${JSON.stringify(role)} is not defined in roles`);
    else permissions.push(...granted.map((item) => ({ role, resource: item.resource, action: item.action })));
  }
  return { id: value.id, permissions };
}

/** Drops the members a case leaves out, so that they do not hide the defaults. `null` stays. */
function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, member]) => member !== undefined)) as Partial<T>;
}
