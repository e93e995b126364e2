import type { AdminApi } from './admin-client.ts';
import { PASSWORD, type World } from '../gateway/world.ts';
import type { User } from '../../src/identity/users.ts';

/** A world (see gateway/world.ts) created through the admin API, so its roles are known by name. */
export interface AdminWorld extends World {
  userRole: string;
  agentRole: string;
}

let counter = 0;

/** Returns a suffix that no other world of this process has, for the names of its records. */
export function uniqueSuffix(): string {
  counter += 1;
  return `${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Sends an admin API request and returns the JSON body, or throws when the status is not `status`. */
export async function expectStatus(api: AdminApi, method: string, path: string, body: unknown, status: number): Promise<Record<string, unknown>> {
  const response = await api.call(method, path, body);
  if (response.status !== status) throw new Error(`${method} ${path} returned ${response.status}: ${JSON.stringify(response.json)}`);
  return response.json;
}

/**
 * Creates, through the admin API, the resource that `resource` describes (the body of
 * `POST /admin/v1/resources`, with its `name`), then the roles `payer-<suffix>` and
 * `pay-agent-<suffix>` that grant every action of it, the person `payer-<suffix>` with the first
 * role, an agent with the second, and an application for the person's own token.
 * `userRoleId` and `agentRoleId` are empty: the admin API names roles by name.
 */
export async function createAdminWorld(api: AdminApi, suffix: string, resource: { name: string } & Record<string, unknown>): Promise<AdminWorld> {
  const created = await expectStatus(api, 'POST', '/resources', resource, 201);
  const identifier = String(created.identifier);

  const userRole = `payer-${suffix}`;
  const agentRole = `pay-agent-${suffix}`;
  await expectStatus(api, 'POST', '/roles', { name: userRole, permissions: [{ resource: identifier, action: '*' }] }, 201);
  await expectStatus(api, 'POST', '/roles', { name: agentRole, permissions: [{ resource: identifier, action: '*' }] }, 201);

  const user = await expectStatus(api, 'POST', '/users', { username: `payer-${suffix}`, password: PASSWORD, roles: [userRole] }, 201);
  const agent = await expectStatus(api, 'POST', '/agents', { name: `Pay Agent ${suffix}`, roles: [agentRole] }, 201);
  const application = await expectStatus(api, 'POST', '/applications', { name: `Pay App ${suffix}`, redirect_uris: ['http://127.0.0.1/callback'] }, 201);

  return {
    user: user as unknown as User,
    agentId: String(agent.client_id),
    agentSecret: String(agent.client_secret),
    applicationId: String(application.client_id),
    resourceId: String(created.id),
    resourceName: resource.name,
    identifier,
    userRoleId: '',
    agentRoleId: '',
    userRole,
    agentRole,
  };
}
