import { canonicalJson } from '../util/canonical-json.ts';
import { sha256Hex } from '../store/ids.ts';
import { readRequestArguments, type RequestArguments } from './arguments.ts';

/** A gateway request that needs the person's approval, as the gateway received it. */
export interface BoundRequest {
  userId: string;
  agentId: string;
  /** Id of the registered resource. */
  resourceId: string;
  /** Resource identifier: the audience (`aud`, RFC 8707) of the agent's access token. */
  resource: string;
  action: string;
  method: string;
  /** Upstream path including the query, as the gateway forwards it. */
  path: string;
  body: Buffer;
  contentType?: string | undefined;
}

/** The fields an approval is bound to: one person's agent calling one action with exact arguments. */
export interface ApprovalBinding {
  userId: string;
  agentId: string;
  resourceId: string;
  /** The audience of the agent's access token. */
  audience: string;
  action: string;
  method: string;
  path: string;
  arguments: RequestArguments;
}

/** Derives the binding of a request: its arguments are read from the body and its content type. */
export function bindRequest(request: BoundRequest): ApprovalBinding {
  return {
    userId: request.userId,
    agentId: request.agentId,
    resourceId: request.resourceId,
    audience: request.resource,
    action: request.action,
    method: request.method,
    path: request.path,
    arguments: readRequestArguments(request.body, request.contentType),
  };
}

/**
 * Hashes a binding as SHA-256 over its RFC 8785 canonical JSON, so an approval for one request
 * cannot be used for a request that differs in any bound field. Throws when a field is missing
 * or empty, because canonical JSON would silently leave it out of the hash.
 */
export function bindingHash(binding: ApprovalBinding): string {
  const fields: Record<string, string> = {
    user: binding.userId,
    agent: binding.agentId,
    resource: binding.resourceId,
    audience: binding.audience,
    action: binding.action,
    method: typeof binding.method === 'string' ? binding.method.toUpperCase() : binding.method,
    path: binding.path,
    arguments_form: binding.arguments?.form,
    arguments_media_type: binding.arguments?.mediaType,
    arguments_sha256: binding.arguments?.sha256,
  };
  for (const [name, value] of Object.entries(fields)) {
    // A request without a Content-Type has an empty media type; every other field has a value.
    const allowsEmpty = name === 'arguments_media_type';
    if (typeof value !== 'string' || (value === '' && !allowsEmpty)) throw new TypeError(`The approval binding has no ${name}; every bound field must be a non-empty string.`);
  }
  return sha256Hex(canonicalJson(fields));
}
