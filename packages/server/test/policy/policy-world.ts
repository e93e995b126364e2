import type { AdminApi } from '../admin/admin-client.ts';
import { createAdminWorld, expectStatus, uniqueSuffix, type AdminWorld } from '../admin/admin-world.ts';
import { UPSTREAM_CREDENTIAL } from '../gateway/world.ts';

/** A gateway resource set up through the admin API, with actions that declare typed arguments. */
export type PolicyWorld = AdminWorld;

/** An action as `POST /admin/v1/resources` takes it. */
export interface ActionSpec {
  name: string;
  method: string;
  path_prefix: string;
  requires_approval?: boolean;
  arguments?: Record<string, string>;
}

const DEFAULT_ACTIONS: ActionSpec[] = [
  { name: 'pay', method: 'POST', path_prefix: '/payments', arguments: { amount: 'Long', currency: 'String' } },
  { name: 'mail.send', method: 'POST', path_prefix: '/mail', arguments: { to: 'String', urgent: 'Boolean' } },
  { name: 'mail.read', method: 'GET', path_prefix: '/mail' },
  { name: 'refund', method: 'POST', path_prefix: '/refunds', requires_approval: true, arguments: { amount: 'Long' } },
];

/**
 * Creates, through the admin API, a resource `pay-<n>` whose upstream is `<upstream>/api`, a
 * person and an agent each with a role granting every action of it, an application for the
 * person's own token, and the person's upstream credential. Actions, with their declared
 * arguments: `pay` (POST /payments, amount Long and currency String), `mail.send` (POST /mail,
 * to String and urgent Boolean), `mail.read` (GET /mail) and `refund` (POST /refunds, needs
 * approval, amount Long). `options.actions` replaces these actions, and
 * `options.storeCredential: false` leaves the person without an upstream credential.
 */
export async function createPolicyWorld(api: AdminApi, upstreamUrl: string, options: { actions?: ActionSpec[]; storeCredential?: boolean } = {}): Promise<PolicyWorld> {
  const suffix = uniqueSuffix();
  const world = await createAdminWorld(api, suffix, { name: `pay-${suffix}`, upstream_base_url: `${upstreamUrl}/api`, actions: options.actions ?? DEFAULT_ACTIONS });
  if (options.storeCredential !== false) await expectStatus(api, 'PUT', `/users/${world.user.id}/credentials/${world.resourceName}`, { credential: UPSTREAM_CREDENTIAL }, 201);
  return world;
}

/** Saves a policy through the admin API and returns its version. */
export async function setPolicy(api: AdminApi, source: string): Promise<number> {
  const saved = await expectStatus(api, 'PUT', '/policy', { source }, 200);
  return Number(saved.version);
}
