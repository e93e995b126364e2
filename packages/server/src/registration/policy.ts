import type { ServerContext } from '../context.ts';
import { nowSeconds } from '../store/ids.ts';

/** Administrator's settings for clients that register themselves. */
export interface RegistrationPolicy {
  /** RFC 7591 dynamic client registration at /register. */
  dynamicRegistration: boolean;
  /** client_id URLs resolved from their client ID metadata document. */
  metadataDocuments: boolean;
  /** Host names metadata documents may come from; empty allows any host with public addresses. */
  metadataDocumentHosts: string[];
}

/** Both ways are closed until an administrator opens them. */
export const CLOSED_POLICY: RegistrationPolicy = { dynamicRegistration: false, metadataDocuments: false, metadataDocumentHosts: [] };

type Ctx = Pick<ServerContext, 'db' | 'tenantId'>;

export async function registrationPolicy(ctx: Ctx): Promise<RegistrationPolicy> {
  const row = await ctx.db.selectFrom('registration_policies').selectAll().where('tenant_id', '=', ctx.tenantId).executeTakeFirst();
  if (row === undefined) return CLOSED_POLICY;
  return {
    dynamicRegistration: row.dynamic_registration === 1,
    metadataDocuments: row.metadata_documents === 1,
    metadataDocumentHosts: JSON.parse(row.metadata_document_hosts) as string[],
  };
}

export async function saveRegistrationPolicy(ctx: Ctx, policy: RegistrationPolicy): Promise<void> {
  const values = {
    dynamic_registration: policy.dynamicRegistration ? 1 : 0,
    metadata_documents: policy.metadataDocuments ? 1 : 0,
    metadata_document_hosts: JSON.stringify(policy.metadataDocumentHosts),
    updated_at: nowSeconds(),
  };
  await ctx.db
    .insertInto('registration_policies')
    .values({ tenant_id: ctx.tenantId, ...values })
    .onConflict((oc) => oc.column('tenant_id').doUpdateSet(values))
    .execute();
}
