import type { ServerContext } from '../context.ts';
import { createClient, findClient, type Client } from '../agents/clients.ts';
import { nowSeconds } from '../store/ids.ts';
import { canonicalJson } from '../util/canonical-json.ts';
import { parseClientMetadata, type ClientMetadata } from './client-metadata.ts';
import { DocumentFetchError, fetchJsonDocument } from './document-fetch.ts';
import { registrationPolicy } from './policy.ts';
import { registeredClientName } from './registered-client.ts';

/** Checks whether a client_id is a URL, which names its own client ID metadata document. */
export function isMetadataDocumentUrl(clientId: string): boolean {
  return clientId.startsWith('https://') || clientId.startsWith('http://');
}

/** A client ID metadata document that cannot be used; the message is safe to show to the client. */
export class MetadataDocumentError extends Error {
  override name = 'MetadataDocumentError';
}

/**
 * Resolves a URL client_id to its client (draft-ietf-oauth-client-id-metadata-document-03): the
 * stored record while its metadata is fresh, otherwise the document is fetched again, checked and
 * stored. A client seen for the first time is recorded as `registered`, so it can do nothing until
 * an administrator makes it an agent. Every failure is an error: nothing stale is used.
 */
export async function resolveMetadataDocumentClient(ctx: ServerContext, clientId: string): Promise<Client> {
  const policy = await registrationPolicy(ctx);
  if (!policy.metadataDocuments) throw new MetadataDocumentError('This server does not accept client ID metadata documents.');
  const url = checkClientIdUrl(clientId, ctx.config.allowLoopbackClientMetadata);
  if (policy.metadataDocumentHosts.length > 0 && !policy.metadataDocumentHosts.includes(url.hostname)) {
    throw new MetadataDocumentError(`Client ID metadata documents from ${url.hostname} are not allowed here.`);
  }

  const stored = await findClient(ctx, clientId);
  if (stored !== undefined && stored.registration !== 'metadata_document') throw new MetadataDocumentError('The client_id is not a metadata document client.');
  if (stored !== undefined && Number(stored.metadata_expires_at ?? 0) > nowSeconds()) return stored;

  let fetched;
  try {
    fetched = await fetchJsonDocument(url, { allowLoopback: ctx.config.allowLoopbackClientMetadata, trustedCertificates: ctx.trustedCertificates });
  } catch (error) {
    if (error instanceof DocumentFetchError) throw new MetadataDocumentError(`The client ID metadata document was refused: ${error.message}`, { cause: error });
    throw error;
  }
  const metadata = documentMetadata(fetched.body, clientId);
  const expiresAt = nowSeconds() + fetched.freshSeconds;
  return stored === undefined ? recordNewClient(ctx, clientId, metadata, expiresAt) : refreshClient(ctx, stored, metadata, expiresAt);
}

/**
 * Checks the draft's rules for a client identifier URL: https (http on loopback only in test mode),
 * a path, and no fragment, credentials or dot segments. The URL is not normalized: the document's
 * client_id must equal it as a plain string.
 */
function checkClientIdUrl(clientId: string, allowLoopback: boolean): URL {
  if (clientId.length > 2000 || !URL.canParse(clientId)) throw new MetadataDocumentError('The client_id is not a valid URL.');
  const url = new URL(clientId);
  const loopbackHost = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(allowLoopback && url.protocol === 'http:' && loopbackHost)) throw new MetadataDocumentError('A client_id URL must use https.');
  if (url.pathname === '/' || url.hash !== '' || clientId.includes('#')) throw new MetadataDocumentError('A client_id URL must have a path and no fragment.');
  if (url.username !== '' || url.password !== '') throw new MetadataDocumentError('A client_id URL must not contain credentials.');
  // URL parsing treats %2e as a dot and a backslash as a slash, so both count here too.
  if (/[/\\](\.|%2e){1,2}([/\\?]|$)/i.test(clientId.replace(/^[a-z]+:\/\/[^/\\]*/i, ''))) throw new MetadataDocumentError('A client_id URL must not contain . or .. path segments.');
  return url;
}

function documentMetadata(body: unknown, clientId: string): ClientMetadata {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new MetadataDocumentError('The client ID metadata document must be a JSON object.');
  const document = body as Record<string, unknown>;
  // The draft requires the document to name itself, compared as a simple string (RFC 3986 §6.2.1).
  if (document.client_id !== clientId) throw new MetadataDocumentError('The client_id in the metadata document differs from its URL.');
  if ('client_secret' in document || 'client_secret_expires_at' in document) throw new MetadataDocumentError('A client ID metadata document must not contain a client secret.');
  try {
    return parseClientMetadata(document, 'metadata_document');
  } catch (error) {
    throw new MetadataDocumentError(`The client ID metadata document is invalid: ${(error as Error).message}`, { cause: error });
  }
}

async function recordNewClient(ctx: ServerContext, clientId: string, metadata: ClientMetadata, expiresAt: number): Promise<Client> {
  try {
    return await ctx.db.transaction().execute(async (trx) => {
      const { client } = await createClient(
        { db: trx, tenantId: ctx.tenantId },
        {
          kind: 'registered',
          clientId,
          name: registeredClientName(metadata.clientName, clientId),
          jwks: metadata.jwks,
          publicClient: metadata.authMethod === 'none',
          redirectUris: metadata.redirectUris,
          registration: { origin: 'metadata_document', expiresAt },
          grantTypes: metadata.grantTypes,
          postLogoutRedirectUris: metadata.postLogoutRedirectUris,
        },
      );
      await ctx.audit({ event: 'client.registered', agent: clientId, target: { registration: 'metadata_document', auth_method: client.token_endpoint_auth_method, redirect_uris: metadata.redirectUris }, outcome: { result: 'registered' } }, trx);
      return client;
    });
  } catch (error) {
    // Two requests fetched the same new document at once; the other one stored it.
    const stored = await findClient(ctx, clientId);
    if (stored !== undefined) return stored;
    throw error;
  }
}

/** The client fields an administrator reviews before making a client an agent, by column name. */
const REVIEWED_FIELDS = ['redirect_uris', 'post_logout_redirect_uris', 'token_endpoint_auth_method', 'grant_types', 'jwks'] as const;

type ReviewedField = (typeof REVIEWED_FIELDS)[number];
type ReviewedValues = Pick<Client, ReviewedField>;

/**
 * Stores the fetched metadata. A client an administrator already made an agent keeps its name
 * and roles. When the document changed a field the administrator reviewed, the new value must
 * not take effect unreviewed, so the client becomes `registered` again. It keeps its roles, but
 * can do nothing until an administrator makes it an agent again. The audit log records
 * `client.review_required` with the changed fields.
 */
async function refreshClient(ctx: ServerContext, stored: Client, metadata: ClientMetadata, expiresAt: number): Promise<Client> {
  const reviewed: ReviewedValues = {
    redirect_uris: JSON.stringify(metadata.redirectUris),
    post_logout_redirect_uris: JSON.stringify(metadata.postLogoutRedirectUris),
    token_endpoint_auth_method: metadata.authMethod,
    grant_types: JSON.stringify(metadata.grantTypes),
    jwks: metadata.jwks === undefined ? null : JSON.stringify(metadata.jwks),
  };
  const changedFields = stored.kind === 'agent' ? REVIEWED_FIELDS.filter((field) => !sameFieldValue(field, stored[field], reviewed[field])) : [];
  const changes = {
    ...reviewed,
    name: stored.kind === 'registered' ? registeredClientName(metadata.clientName, stored.client_id) : stored.name,
    metadata_expires_at: expiresAt,
  };

  if (changedFields.length === 0) {
    await ctx.db.updateTable('clients').set(changes).where('tenant_id', '=', ctx.tenantId).where('client_id', '=', stored.client_id).execute();
    return { ...stored, ...changes };
  }

  return ctx.db.transaction().execute(async (trx) => {
    const demoted = { ...changes, kind: 'registered' as const };
    // Only the request that changes the kind records the entry, when two fetch at once.
    const updated = await trx.updateTable('clients').set(demoted).where('tenant_id', '=', ctx.tenantId).where('client_id', '=', stored.client_id).where('kind', '=', 'agent').executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 1) {
      await ctx.audit(
        {
          event: 'client.review_required',
          agent: stored.client_id,
          target: { registration: 'metadata_document', changed_fields: changedFields },
          outcome: { result: 'registered' },
          reason: { rule: 'the client ID metadata document changed fields an administrator reviewed, so an administrator must make the client an agent again' },
        },
        trx,
      );
    }
    return { ...stored, ...demoted };
  });
}

/**
 * Compares a stored field with its value from the document. Lists compare as sets, because the
 * order of redirect URIs or grant types means nothing, and JSON compares in RFC 8785 canonical
 * form, so reordered members of a JWK are no change.
 */
function sameFieldValue(field: ReviewedField, stored: string | null | undefined, fetched: string | null | undefined): boolean {
  if (field === 'token_endpoint_auth_method') return stored === fetched;
  return canonicalFieldValue(field, stored) === canonicalFieldValue(field, fetched);
}

function canonicalFieldValue(field: ReviewedField, value: string | null | undefined): string {
  if (value === null || value === undefined) {
    // A client recorded without post-logout URIs stores null, which means the empty list.
    return field === 'jwks' ? 'null' : '[]';
  }

  const parsed: unknown = JSON.parse(value);
  if (Array.isArray(parsed)) return canonicalJson([...(parsed as string[])].sort());
  return canonicalJson(parsed);
}
