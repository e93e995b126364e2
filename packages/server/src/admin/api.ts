import type { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { z as zod } from 'zod';
import { createAgentBody, createApplicationBody, createClientRecord, disableClientRecord, grantClientRole, listClientRecords, revokeClientRole } from './clients.ts';
import { createRoleBody, createRoleRecord, listRoleRecords } from './roles.ts';
import { createUserBody, createUserRecord, disableUserRecord, grantUserRole, listUserRecords, revokeUserRole, roleAssignmentBody } from './users.ts';
import { createResourceBody, createResourceRecord, listResourceRecords } from './resources.ts';
import { listCredentials, listCredentialsQuery, setCredential, setCredentialBody } from './credentials.ts';
import { listDelegationRecords, listDelegationsQuery, revokeBody, revokeDelegationsOfAgent, revokeDelegationsOfUser, revokeOneDelegation } from './delegations.ts';
import { auditTailQuery, tailAudit, verifyAudit } from './audit.ts';
import { setPolicyBody, showPolicy, updatePolicy } from './policy.ts';
import { makeAgentBody, makeRegisteredClientAgent, registrationPolicyBody, showRegistrationPolicy, updateRegistrationPolicy } from './registration.ts';

/** What a route handler gets: the raw input (validated by the operation it calls) and who sent it. */
export interface AdminCall {
  params: Record<string, string>;
  query: unknown;
  body: unknown;
  actor: string;
}

export interface AdminResult {
  status: 200 | 201;
  body: unknown;
}

/**
 * One admin API operation. The same table registers the Fastify routes and generates the
 * OpenAPI document, so the document describes exactly the schemas that validate input.
 */
export interface AdminOperation {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path under `/admin/v1`, with Fastify `:name` parameters. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  body?: z.ZodType;
  query?: z.ZodType;
  /** Status of a successful call. */
  status: 200 | 201;
  handle(ctx: ServerContext, call: AdminCall): Promise<AdminResult>;
}

/** Operations without a body accept none, an empty object, or nothing else. */
export const emptyBody = zod.strictObject({}).describe('No fields');

const ok = (body: unknown): AdminResult => ({ status: 200, body });
const created = (body: unknown): AdminResult => ({ status: 201, body });
const items = (list: unknown[]): AdminResult => ok({ items: list });

function param(call: AdminCall, name: string): string {
  const value = call.params[name];
  if (value === undefined) throw new Error(`The route has no :${name} parameter.`);
  return value;
}

export const adminOperations: AdminOperation[] = [
  { method: 'POST', path: '/users', operationId: 'createUser', summary: 'Create a local user', tag: 'users', body: createUserBody, status: 201, handle: async (ctx, call) => created(await createUserRecord(ctx, call.body, call.actor)) },
  { method: 'GET', path: '/users', operationId: 'listUsers', summary: 'List users', tag: 'users', status: 200, handle: async (ctx) => items(await listUserRecords(ctx)) },
  {
    method: 'POST',
    path: '/users/:user/roles',
    operationId: 'grantUserRole',
    summary: 'Assign a role to a user (by id or username)',
    tag: 'users',
    body: roleAssignmentBody,
    status: 200,
    handle: async (ctx, call) => ok(await grantUserRole(ctx, param(call, 'user'), call.body, call.actor)),
  },
  {
    method: 'DELETE',
    path: '/users/:user/roles/:role',
    operationId: 'revokeUserRole',
    summary: 'Remove a role from a user',
    tag: 'users',
    status: 200,
    handle: async (ctx, call) => ok(await revokeUserRole(ctx, param(call, 'user'), param(call, 'role'), call.actor)),
  },
  {
    method: 'POST',
    path: '/users/:user/disable',
    operationId: 'disableUser',
    summary: 'Disable a user and end their sessions',
    tag: 'users',
    body: emptyBody,
    status: 200,
    handle: async (ctx, call) => ok(await disableUserRecord(ctx, param(call, 'user'), call.actor)),
  },
  {
    method: 'POST',
    path: '/users/:user/revoke-delegations',
    operationId: 'revokeUserDelegations',
    summary: 'Revoke every active delegation of a person',
    tag: 'delegations',
    body: revokeBody,
    status: 200,
    handle: async (ctx, call) => ok(await revokeDelegationsOfUser(ctx, param(call, 'user'), call.body, call.actor)),
  },
  {
    method: 'PUT',
    path: '/users/:user/credentials/:resource',
    operationId: 'setCredential',
    summary: "Set a person's upstream credential for a resource (201 when new, 200 when replaced)",
    tag: 'credentials',
    body: setCredentialBody,
    status: 201,
    handle: async (ctx, call) => {
      const saved = await setCredential(ctx, param(call, 'user'), param(call, 'resource'), call.body, call.actor);
      return saved.created ? created(saved.connection) : ok(saved.connection);
    },
  },
  { method: 'GET', path: '/credentials', operationId: 'listCredentials', summary: 'List stored upstream credentials (metadata only)', tag: 'credentials', query: listCredentialsQuery, status: 200, handle: async (ctx, call) => items(await listCredentials(ctx, call.query)) },

  { method: 'POST', path: '/roles', operationId: 'createRole', summary: 'Create a role with permissions', tag: 'roles', body: createRoleBody, status: 201, handle: async (ctx, call) => created(await createRoleRecord(ctx, call.body, call.actor)) },
  { method: 'GET', path: '/roles', operationId: 'listRoles', summary: 'List roles', tag: 'roles', status: 200, handle: async (ctx) => items(await listRoleRecords(ctx)) },

  {
    method: 'POST',
    path: '/agents',
    operationId: 'createAgent',
    summary: 'Register an agent; a generated client_secret is returned only in this response',
    tag: 'agents',
    body: createAgentBody,
    status: 201,
    handle: async (ctx, call) => created(await createClientRecord(ctx, 'agent', call.body, call.actor)),
  },
  { method: 'GET', path: '/agents', operationId: 'listAgents', summary: 'List agents', tag: 'agents', status: 200, handle: async (ctx) => items(await listClientRecords(ctx, 'agent')) },
  {
    method: 'POST',
    path: '/agents/:client_id/roles',
    operationId: 'grantAgentRole',
    summary: 'Assign a role to an agent',
    tag: 'agents',
    body: roleAssignmentBody,
    status: 200,
    handle: async (ctx, call) => ok(await grantClientRole(ctx, 'agent', param(call, 'client_id'), call.body, call.actor)),
  },
  {
    method: 'DELETE',
    path: '/agents/:client_id/roles/:role',
    operationId: 'revokeAgentRole',
    summary: 'Remove a role from an agent',
    tag: 'agents',
    status: 200,
    handle: async (ctx, call) => ok(await revokeClientRole(ctx, 'agent', param(call, 'client_id'), param(call, 'role'), call.actor)),
  },
  {
    method: 'POST',
    path: '/agents/:client_id/disable',
    operationId: 'disableAgent',
    summary: 'Disable an agent',
    tag: 'agents',
    body: emptyBody,
    status: 200,
    handle: async (ctx, call) => ok(await disableClientRecord(ctx, 'agent', param(call, 'client_id'), call.actor)),
  },
  {
    method: 'POST',
    path: '/agents/:client_id/revoke-delegations',
    operationId: 'revokeAgentDelegations',
    summary: 'Revoke every active delegation of an agent',
    tag: 'delegations',
    body: revokeBody,
    status: 200,
    handle: async (ctx, call) => ok(await revokeDelegationsOfAgent(ctx, param(call, 'client_id'), call.body, call.actor)),
  },

  {
    method: 'POST',
    path: '/applications',
    operationId: 'createApplication',
    summary: 'Register an application that signs people in; a generated client_secret is returned only in this response',
    tag: 'applications',
    body: createApplicationBody,
    status: 201,
    handle: async (ctx, call) => created(await createClientRecord(ctx, 'application', call.body, call.actor)),
  },
  { method: 'GET', path: '/applications', operationId: 'listApplications', summary: 'List applications', tag: 'applications', status: 200, handle: async (ctx) => items(await listClientRecords(ctx, 'application')) },
  {
    method: 'POST',
    path: '/applications/:client_id/disable',
    operationId: 'disableApplication',
    summary: 'Disable an application',
    tag: 'applications',
    body: emptyBody,
    status: 200,
    handle: async (ctx, call) => ok(await disableClientRecord(ctx, 'application', param(call, 'client_id'), call.actor)),
  },

  { method: 'GET', path: '/registration-policy', operationId: 'getRegistrationPolicy', summary: 'Show what clients may do by themselves', tag: 'registration', status: 200, handle: async (ctx) => ok(await showRegistrationPolicy(ctx)) },
  {
    method: 'PUT',
    path: '/registration-policy',
    operationId: 'updateRegistrationPolicy',
    summary: 'Open or close dynamic client registration and client ID metadata documents',
    tag: 'registration',
    body: registrationPolicyBody,
    status: 200,
    handle: async (ctx, call) => ok(await updateRegistrationPolicy(ctx, call.body, call.actor)),
  },
  { method: 'GET', path: '/registered-clients', operationId: 'listRegisteredClients', summary: 'List clients that registered themselves and are not agents yet', tag: 'registration', status: 200, handle: async (ctx) => items(await listClientRecords(ctx, 'registered')) },
  {
    method: 'POST',
    path: '/registered-clients/:client_id/make-agent',
    operationId: 'makeRegisteredClientAgent',
    summary: 'Make a self-registered client an agent with a name and roles',
    tag: 'registration',
    body: makeAgentBody,
    status: 200,
    handle: async (ctx, call) => ok(await makeRegisteredClientAgent(ctx, param(call, 'client_id'), call.body, call.actor)),
  },

  { method: 'POST', path: '/resources', operationId: 'createResource', summary: 'Register a resource and its actions', tag: 'resources', body: createResourceBody, status: 201, handle: async (ctx, call) => created(await createResourceRecord(ctx, call.body, call.actor)) },
  { method: 'GET', path: '/resources', operationId: 'listResources', summary: 'List resources', tag: 'resources', status: 200, handle: async (ctx) => items(await listResourceRecords(ctx)) },

  { method: 'GET', path: '/policy', operationId: 'getPolicy', summary: 'Show the Cedar policy in force, its version, and its problems against the current resources', tag: 'policy', status: 200, handle: async (ctx) => ok(await showPolicy(ctx)) },
  {
    method: 'PUT',
    path: '/policy',
    operationId: 'setPolicy',
    summary: 'Validate a Cedar policy against the resources and save it as the next version (422 with Cedar\'s messages when invalid)',
    tag: 'policy',
    body: setPolicyBody,
    status: 200,
    handle: async (ctx, call) => ok(await updatePolicy(ctx, call.body, call.actor)),
  },

  { method: 'GET', path: '/delegations', operationId: 'listDelegations', summary: 'List delegations', tag: 'delegations', query: listDelegationsQuery, status: 200, handle: async (ctx, call) => items(await listDelegationRecords(ctx, call.query)) },
  {
    method: 'POST',
    path: '/delegations/:id/revoke',
    operationId: 'revokeDelegation',
    summary: 'Revoke one delegation and its refresh tokens',
    tag: 'delegations',
    body: revokeBody,
    status: 200,
    handle: async (ctx, call) => ok(await revokeOneDelegation(ctx, param(call, 'id'), call.body, call.actor)),
  },

  {
    method: 'GET',
    path: '/audit',
    operationId: 'tailAudit',
    summary: 'Read audit entries after a sequence number',
    tag: 'audit',
    query: auditTailQuery,
    status: 200,
    handle: async (ctx, call) => {
      const entries = await tailAudit(ctx, call.query);
      return ok({ items: entries, next_after: entries.at(-1)?.seq ?? null });
    },
  },
  {
    method: 'GET',
    path: '/audit/verify',
    operationId: 'verifyAudit',
    summary: 'Recompute the audit hash chain and report the first altered entry',
    tag: 'audit',
    status: 200,
    handle: async (ctx) => {
      const result = await verifyAudit(ctx);
      return ok(result.ok ? result : { ok: false, entries: result.entries, first_bad_seq: result.firstBadSeq, problem: result.problem });
    },
  },
];
