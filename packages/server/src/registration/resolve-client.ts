import type { ServerContext } from '../context.ts';
import { findClient, type Client } from '../agents/clients.ts';
import { isMetadataDocumentUrl, resolveMetadataDocumentClient } from './metadata-document.ts';

/**
 * Finds the client a request names: a stored client by its client_id, or, for a URL client_id, the
 * client its metadata document describes. Throws MetadataDocumentError when a document is refused.
 */
export async function resolveClient(ctx: ServerContext, clientId: string): Promise<Client | undefined> {
  return isMetadataDocumentUrl(clientId) ? resolveMetadataDocumentClient(ctx, clientId) : findClient(ctx, clientId);
}
