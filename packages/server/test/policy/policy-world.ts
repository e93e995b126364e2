import type { AdminApi } from '../admin/admin-client.ts';
import { PASSWORD, UPSTREAM_CREDENTIAL, type World } from '../gateway/world.ts';
import type { User } from '../../src/identity/users.ts';

/** A gateway resource set up through the admin API, with actions that declare typed arguments. */
export interface PolicyWorld extends World {
  userRole: string;
  agentRole: string;
}

let counter = 0;

async function expectStatus(api: AdminApi, method: string, path: string, body: unknown, status: number): Promise<Record<string, unknown>> {
  const response = await api.call(method, path, body);
  if (response.status !== status) throw new Error(`${method} ${path} answered ${response.status}: ${JSON.stringify(response.json)}`);
  return response.json;
}

/**
 * Creates, through the admin API, a resource `pay-<n>` whose upstream is `<upstream>/api`, a
 * person and an agent each with a role granting every action of it, an application for the
 * person's own token, and the person's upstream credential. Actions, with their declared
 * arguments: `pay` (POST /payments, amount Long and currency String), `mail.send` (POST /mail,
 * to String and urgent Boolean), `mail.read` (GET /mail) and `refund` (POST /refunds, needs
 * approval, amount Long).
 */
export async function createPolicyWorld(api: AdminApi, upstreamUrl: string): Promise<PolicyWorld> {
  counter += 1;
  const suffix = `${counter}-${Math.random().toString(36).slice(2, 8)}`;
  const resourceName = `pay-${suffix}`;

  const resource = await expectStatus(
    api,
    'POST',
    '/resources',
    {
      name: resourceName,
      upstream_base_url: `${upstreamUrl}/api`,
      actions: [
        { name: 'pay', method: 'POST', path_prefix: '/payments', arguments: { amount: 'Long', currency: 'String' } },
        { name: 'mail.send', method: 'POST', path_prefix: '/mail', arguments: { to: 'String', urgent: 'Boolean' } },
        { name: 'mail.read', method: 'GET', path_prefix: '/mail' },
        { name: 'refund', method: 'POST', path_prefix: '/refunds', requires_approval: true, arguments: { amount: 'Long' } },
      ],
    },
    201,
  );
  const identifier = String(resource.identifier);

  const userRole = `payer-${suffix}`;
  const agentRole = `pay-agent-${suffix}`;
  await expectStatus(api, 'POST', '/roles', { name: userRole, permissions: [{ resource: identifier, action: '*' }] }, 201);
  await expectStatus(api, 'POST', '/roles', { name: agentRole, permissions: [{ resource: identifier, action: '*' }] }, 201);

  const user = await expectStatus(api, 'POST', '/users', { username: `payer-${suffix}`, password: PASSWORD, roles: [userRole] }, 201);
  const agent = await expectStatus(api, 'POST', '/agents', { name: `Pay Agent ${suffix}`, roles: [agentRole] }, 201);
  const application = await expectStatus(api, 'POST', '/applications', { name: `Pay App ${suffix}`, redirect_uris: ['http://127.0.0.1/callback'] }, 201);
  await expectStatus(api, 'PUT', `/users/${String(user.id)}/credentials/${resourceName}`, { credential: UPSTREAM_CREDENTIAL }, 201);

  return {
    user: user as unknown as User,
    agentId: String(agent.client_id),
    agentSecret: String(agent.client_secret),
    applicationId: String(application.client_id),
    resourceId: String(resource.id),
    resourceName,
    identifier,
    userRoleId: '',
    agentRoleId: '',
    userRole,
    agentRole,
  };
}

/** Saves a policy through the admin API and returns its version. */
export async function setPolicy(api: AdminApi, source: string): Promise<number> {
  const saved = await expectStatus(api, 'PUT', '/policy', { source }, 200);
  return Number(saved.version);
}
