import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { Config } from './config/schema.ts';
import { DEFAULT_TENANT, type ServerContext } from './context.ts';
import { Envelope } from './crypto/envelope.ts';
import { loadMasterKey } from './crypto/master-key.ts';
import { loadKeyRing } from './crypto/signing-keys.ts';
import { appendAudit } from './audit/log.ts';
import { openStore, type StoreOptions } from './store/db.ts';
import { ensureTenant } from './store/tenants.ts';
import { buildApp } from './http/app.ts';
import { serializeRequestForLog } from './http/request-log.ts';
import { routeModules } from './routes.ts';

export interface MandateServer {
  app: FastifyInstance;
  ctx: ServerContext;
  /** Base URL the server listens on (equal to the issuer when the port was configured). */
  url: string;
  close(): Promise<void>;
}

/** Secrets that must never reach a log line, wherever they appear in a logged object. */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers.dpop',
  'res.headers["set-cookie"]',
  '*.password',
  '*.client_secret',
  '*.access_token',
  '*.refresh_token',
  '*.credential',
];

export interface CreateOptions {
  /** Extra store options (tests use a PostgreSQL schema of their own). */
  store?: Partial<StoreOptions>;
  /** Pino destination; tests pass a stream to inspect logs. */
  logStream?: pino.DestinationStream;
  /**
   * Extra CA certificates (PEM) trusted when fetching client ID metadata documents, for a private
   * PKI or a test's own CA; NODE_EXTRA_CA_CERTS does the same for the whole process.
   */
  trustedCertificates?: string[];
}

/** Opens the database and keys and assembles the app, without listening. */
export async function createContext(config: Config, options: CreateOptions = {}): Promise<ServerContext> {
  // Fastify takes this `req` serializer over its own, which would log each URL with its query as sent.
  const logger = pino({ level: config.logLevel, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, serializers: { req: serializeRequestForLog }, base: { tenant: DEFAULT_TENANT } }, options.logStream);

  const masterKey = loadMasterKey(config.masterKey, config.dataDir);
  if (masterKey.source === 'file') {
    logger.warn(
      `DEVELOPMENT MODE: the master key comes from ${config.dataDir}/master.key, generated on this machine. ` +
        'Anyone who can read that file can decrypt every stored credential and signing key. Set MANDATE_MASTER_KEY (see `mandate keygen`) before production use.',
    );
  }

  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, ...options.store });
  const envelope = new Envelope(masterKey.key);
  await ensureTenant(store.db, DEFAULT_TENANT);
  const keys = await loadKeyRing(store.db, envelope);

  return {
    config,
    store,
    db: store.db,
    envelope,
    keys,
    logger,
    tenantId: DEFAULT_TENANT,
    trustedCertificates: options.trustedCertificates,
    audit: async (event, trx) => {
      await appendAudit(trx ?? store.db, DEFAULT_TENANT, event);
    },
  };
}

/** Starts Mandate: database, keys, routes, then listening on the configured host and port. */
export async function startServer(config: Config, options: CreateOptions = {}): Promise<MandateServer> {
  const ctx = await createContext(config, options);
  const app = await buildApp(ctx, routeModules);

  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await ctx.store.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;

  return {
    app,
    ctx,
    url: `http://${config.host}:${String(port)}`,
    close: async () => {
      await app.close();
      await ctx.store.close();
    },
  };
}
