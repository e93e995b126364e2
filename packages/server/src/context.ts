import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config/schema.ts';
import type { Envelope } from './crypto/envelope.ts';
import type { KeyRing } from './crypto/signing-keys.ts';
import type { AuditEvent } from './audit/entry.ts';
import type { Db, Store } from './store/db.ts';

/** Everything a service needs, created once at start and passed down explicitly. */
export interface ServerContext {
  config: Config;
  store: Store;
  db: Db;
  envelope: Envelope;
  keys: KeyRing;
  logger: FastifyBaseLogger;
  /** Tenant of every record until multi-tenancy is exposed. */
  tenantId: string;
  /**
   * Appends to the audit log; throws when the append fails, so callers can fail closed. Pass
   * the caller's transaction to commit the entry together with the change it records.
   */
  audit(event: AuditEvent, trx?: Db): Promise<void>;
  /** Extra CA certificates (PEM) trusted when Mandate fetches client ID metadata documents. */
  trustedCertificates?: string[] | undefined;
}

export const DEFAULT_TENANT = 'default';
