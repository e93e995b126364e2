import type { AdminApi } from '../admin/admin-client.ts';
import { clientCredentialsToken } from '../admin/admin-client.ts';
import { createAdminWorld, expectStatus, uniqueSuffix, type AdminWorld } from '../admin/admin-world.ts';
import type { TestServer } from '../harness.ts';

/** A resource that a PEP protects, with a person, an agent and the PEP, set up through the admin API. */
export interface AuthzenWorld extends AdminWorld {
  /** The PEP: an application that obtains `mandate:evaluate` tokens. */
  pepId: string;
  pepSecret: string;
}

export const SUBJECT_TYPE = 'mandate_access_token';
export const RESOURCE_TYPE = 'mandate_resource';

/**
 * Creates, through the admin API, a resource `pay-<n>` with the identifier
 * `https://api.example.test/pay-<n>` and no upstream, a person and an agent each with a role
 * granting every action of it, and an application that acts as the PEP. Actions and their
 * declared arguments: `pay` (amount Long, currency String), `mail.send` (to String),
 * `mail.read`, and `refund` (needs approval, amount Long).
 */
export async function createAuthzenWorld(api: AdminApi): Promise<AuthzenWorld> {
  const suffix = uniqueSuffix();
  const resourceName = `pay-${suffix}`;
  const actions = [
    { name: 'pay', arguments: { amount: 'Long', currency: 'String' } },
    { name: 'mail.send', arguments: { to: 'String' } },
    { name: 'mail.read' },
    { name: 'refund', requires_approval: true, arguments: { amount: 'Long' } },
  ];
  const world = await createAdminWorld(api, suffix, { name: resourceName, identifier: `https://api.example.test/${resourceName}`, actions });

  const pep = await expectStatus(api, 'POST', '/applications', { name: `Pay API ${suffix}`, redirect_uris: ['http://127.0.0.1/pep'] }, 201);
  return { ...world, pepId: String(pep.client_id), pepSecret: String(pep.client_secret) };
}

/** Obtains the PEP's token for the Access Evaluation API with client_credentials at the real /token endpoint. */
export async function pepToken(server: TestServer, world: Pick<AuthzenWorld, 'pepId' | 'pepSecret'>): Promise<string> {
  const issued = await clientCredentialsToken(server, world.pepId, world.pepSecret, `${server.issuer}/access`);
  if (issued.status !== 200 || typeof issued.body.access_token !== 'string') throw new Error(`The PEP token request failed: ${issued.status} ${JSON.stringify(issued.body)}`);
  return issued.body.access_token;
}

/** Builds an Access Evaluation request for the agent's token and one action of the world's resource. */
export function evaluationOf(world: Pick<AuthzenWorld, 'identifier'>, token: string, action: string, context?: Record<string, unknown>): Record<string, unknown> {
  return {
    subject: { type: SUBJECT_TYPE, id: token },
    resource: { type: RESOURCE_TYPE, id: world.identifier },
    action: { name: action },
    ...(context === undefined ? {} : { context }),
  };
}

export interface PdpResponse {
  status: number;
  headers: Headers;
  json: Record<string, unknown>;
}

/** POSTs JSON to an AuthZEN endpoint of the server with the PEP's token. */
export async function callPdp(server: TestServer, path: string, body: unknown, options: { token?: string | undefined; headers?: Record<string, string> } = {}): Promise<PdpResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(`${server.issuer}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}
