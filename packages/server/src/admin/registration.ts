import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { addClientRole, clientRoleNames } from '../agents/clients.ts';
import { registrationPolicy, saveRegistrationPolicy, type RegistrationPolicy } from '../registration/policy.ts';
import { auditedTransaction } from './audited-transaction.ts';
import { clientView, type ClientView } from './clients.ts';
import { rejectDuplicates } from './constraint-errors.ts';
import { parseInput } from './input.ts';
import { requireClient, requireRoles } from './references.ts';
import { roleName } from './users.ts';

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

const hostName = z
  .string()
  .max(253)
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'must be a lowercase DNS host name, without scheme, port or wildcard');

export const registrationPolicyBody = z
  .strictObject({
    dynamic_registration: z.boolean().optional().describe('Open RFC 7591 dynamic client registration at /register'),
    metadata_documents: z.boolean().optional().describe('Accept https client_id URLs and fetch their client ID metadata documents'),
    metadata_document_hosts: z.array(hostName).max(100).optional().describe('Hosts metadata documents may come from; an empty list allows any host with public addresses'),
  })
  .describe('What clients may do by themselves; fields left out keep their value. Self-registered clients can do nothing until an administrator makes them agents.');

export const makeAgentBody = z
  .strictObject({
    name: z.string().trim().min(1).max(100).describe('Display name of the new agent, unique in the tenant'),
    roles: z.array(roleName).max(100).optional().describe('Names of roles to assign'),
    require_dpop: z.boolean().default(false).describe('Refuse token requests without a DPoP proof (RFC 9449)'),
  })
  .describe('Makes a self-registered client an agent, with a name and roles chosen by the administrator');

export interface RegistrationPolicyView {
  dynamic_registration: boolean;
  metadata_documents: boolean;
  metadata_document_hosts: string[];
}

export async function showRegistrationPolicy(ctx: Ctx): Promise<RegistrationPolicyView> {
  return policyView(await registrationPolicy(ctx));
}

export async function updateRegistrationPolicy(ctx: Ctx, input: unknown, actor: string): Promise<RegistrationPolicyView> {
  const body = parseInput(registrationPolicyBody, input);
  return auditedTransaction(ctx, async (trx) => {
    const scoped = { db: trx, tenantId: ctx.tenantId };
    const current = await registrationPolicy(scoped);
    const next: RegistrationPolicy = {
      dynamicRegistration: body.dynamic_registration ?? current.dynamicRegistration,
      metadataDocuments: body.metadata_documents ?? current.metadataDocuments,
      metadataDocumentHosts: body.metadata_document_hosts ?? current.metadataDocumentHosts,
    };
    await saveRegistrationPolicy(scoped, next);
    const view = policyView(next);
    return { result: view, events: [{ event: 'registration_policy.updated', actor, target: { ...view }, outcome: { result: 'updated' } }] };
  });
}

/**
 * Makes a client that registered itself (by RFC 7591 or a metadata document) an agent. From now
 * on it can run the code flow, and it gets the intersection of its roles and the person's
 * permissions, as any agent does. A former agent whose metadata document changed a reviewed
 * field is `registered` again and comes back here. It keeps the roles it had, gets these roles
 * added, and may keep its name.
 */
export async function makeRegisteredClientAgent(ctx: Ctx, clientId: string, input: unknown, actor: string): Promise<ClientView> {
  const body = parseInput(makeAgentBody, input);
  const client = await requireClient(ctx, clientId, 'registered', { path: true });
  const roles = await requireRoles(ctx, body.roles, 'roles');

  return rejectDuplicates(`A client named ${body.name} already exists.`, () =>
    auditedTransaction(ctx, async (trx) => {
      const changes = { kind: 'agent' as const, name: body.name, require_dpop: body.require_dpop ? 1 : 0 };
      await trx.updateTable('clients').set(changes).where('tenant_id', '=', ctx.tenantId).where('client_id', '=', client.client_id).where('kind', '=', 'registered').execute();
      for (const role of roles) await addClientRole({ db: trx }, client.client_id, role.id);
      const allRoles = await clientRoleNames({ db: trx, tenantId: ctx.tenantId }, [client.client_id]);
      const view = clientView({ ...client, ...changes }, allRoles.get(client.client_id) ?? []);
      const event = { event: 'client.made_agent', actor, agent: client.client_id, target: { name: body.name, registration: client.registration ?? null, roles: view.roles }, outcome: { result: 'made_agent' } };
      return { result: view, events: [event] };
    }),
  );
}

function policyView(policy: RegistrationPolicy): RegistrationPolicyView {
  return { dynamic_registration: policy.dynamicRegistration, metadata_documents: policy.metadataDocuments, metadata_document_hosts: policy.metadataDocumentHosts };
}
