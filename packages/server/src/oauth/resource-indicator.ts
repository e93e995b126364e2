import type { ServerContext } from '../context.ts';
import { findResourceByIdentifier, type ResourceWithActions } from '../resources/registry.ts';
import { InvalidTarget } from './errors.ts';

/**
 * Resolves the RFC 8707 `resource` parameters of a request to the one resource the token will
 * be for. Mandate issues each access token for exactly one audience, so several values are
 * refused rather than merged.
 */
export async function resolveResource(ctx: ServerContext, values: string[]): Promise<ResourceWithActions> {
  if (values.length === 0) throw new InvalidTarget('The resource parameter is missing. Name the API the token is for (RFC 8707).');
  if (values.length > 1) throw new InvalidTarget('Request a token for one resource at a time; send a single resource parameter.');

  const identifier = values[0] as string;
  // RFC 8707 §2: an absolute URI without a fragment.
  if (!isAbsoluteUriWithoutFragment(identifier)) throw new InvalidTarget('The resource parameter must be an absolute URI without a fragment.');

  const resource = await findResourceByIdentifier(ctx, identifier);
  if (resource === undefined) throw new InvalidTarget('The resource is not registered with this server.', { detail: `unknown resource ${identifier}` });
  return resource;
}

function isAbsoluteUriWithoutFragment(value: string): boolean {
  if (value.includes('#')) return false;
  try {
    return new URL(value).protocol.length > 1;
  } catch {
    return false;
  }
}
