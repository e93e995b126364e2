/**
 * One audit event: who initiated it, which agent ran it, what it touched, what came back and
 * why it was allowed. Token values never appear here; use `tokenDigest` from `audit/log.ts`.
 */
export interface AuditEvent {
  /** Dotted event name, for example `token.issued`, `gateway.call`, `delegation.revoked`. */
  event: string;
  /** The person on whose behalf the action happened (user id). */
  user?: string | undefined;
  /** The agent (client_id) that acted. */
  agent?: string | undefined;
  /** The administrator or client that initiated an admin action, when not the person. */
  actor?: string | undefined;
  /** Target of the action: resource identifier, method and path, record ids. */
  target?: Record<string, unknown> | undefined;
  /** Result of the action: `allowed`, `denied`, an HTTP status, an error code. */
  outcome: Record<string, unknown>;
  /** Why it was allowed or denied: roles, delegation, approval ids, the failed check. */
  reason?: Record<string, unknown> | undefined;
  request_id?: string | undefined;
}

export interface AuditRecord {
  seq: number;
  created_at: number;
  tenant_id: string;
  event: AuditEvent;
  hash: string;
  prev_hash: string;
}
