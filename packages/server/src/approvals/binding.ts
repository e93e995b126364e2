import { canonicalJson } from '../util/canonical-json.ts';
import { sha256Hex } from '../store/ids.ts';

/** The request an approval is for: a person's agent calling one action with one exact path and body. */
export interface ApprovalBinding {
  userId: string;
  agentId: string;
  /** Resource identifier (the token audience). */
  resource: string;
  action: string;
  method: string;
  /** Upstream path including the query, as the gateway forwards it. */
  path: string;
  /** Hex SHA-256 of the request body. */
  bodyHash: string;
}

/**
 * Hashes a binding as SHA-256 over its RFC 8785 canonical JSON, so an approval for one
 * request cannot be replayed for a request that differs in any bound field.
 */
export function bindingHash(binding: ApprovalBinding): string {
  const canonical = canonicalJson({
    user: binding.userId,
    agent: binding.agentId,
    resource: binding.resource,
    action: binding.action,
    method: binding.method.toUpperCase(),
    path: binding.path,
    body_sha256: binding.bodyHash,
  });
  return sha256Hex(canonical);
}
