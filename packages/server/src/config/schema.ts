import { z } from 'zod';

/** Upper bound for any access token lifetime: agents hold short-lived tokens only. */
export const MAX_ACCESS_TOKEN_TTL_SECONDS = 30 * 60;
export const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 10 * 60;

/**
 * Server settings. Each setting has an environment variable (`MANDATE_` + the name in
 * upper snake case) and the same key in the optional JSON file named by `MANDATE_CONFIG`.
 */
export const configSchema = z
  .object({
    /** Public base URL of this server; it is the `iss` of every token. */
    issuer: z.url({ protocol: /^https?$/ }).refine((value) => !value.endsWith('/') && !value.includes('#') && !value.includes('?'), {
      message: 'must be an absolute http(s) URL without a trailing slash, query or fragment',
    }),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.coerce.number().int().min(0).max(65535).default(8080),
    /** Folder for the embedded SQLite database and the generated master key file. */
    dataDir: z.string().min(1).default('.data'),
    /** PostgreSQL connection URL; when absent, Mandate uses SQLite under `dataDir`. */
    databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://').optional(),
    /** 32 random bytes, base64url; when absent, a key file under `dataDir` is used (development only). */
    masterKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be 32 bytes encoded as base64url (43 characters)').optional(),
    /** `production` refuses development shortcuts such as the generated master key file. */
    mode: z.enum(['development', 'production']).default('development'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    accessTokenTtlSeconds: z.coerce.number().int().min(60).max(MAX_ACCESS_TOKEN_TTL_SECONDS).default(DEFAULT_ACCESS_TOKEN_TTL_SECONDS),
    refreshTokenIdleSeconds: z.coerce.number().int().min(60).default(14 * 24 * 3600),
    sessionTtlSeconds: z.coerce.number().int().min(60).default(8 * 3600),
    approvalTtlSeconds: z.coerce.number().int().min(30).max(3600).default(300),
    authorizationCodeTtlSeconds: z.coerce.number().int().min(10).max(600).default(60),
    /** Allows gateway upstreams on loopback and plain http; tests and examples set it. */
    allowLoopbackUpstreams: z.union([z.boolean(), z.stringbool()]).default(false),
    /** Per-IP request budget per minute on the sign-in and token endpoints. */
    rateLimitPerMinute: z.coerce.number().int().min(1).default(600),
    /**
     * Requires a server-issued `nonce` in every DPoP proof at the token endpoint and the gateway
     * (RFC 9449 §8, §9); clients get one from a `use_dpop_nonce` error and retry.
     */
    dpopNoncesRequired: z.union([z.boolean(), z.stringbool()]).default(false),
    /**
     * Maximum number of actors in the nested `act` claim of an exchanged token (RFC 8693 §4.1):
     * 1 lets agents act for people but not hand the token on, 3 allows agent → sub-agent → sub-sub-agent.
     */
    maxDelegationChainDepth: z.coerce.number().int().min(1).max(10).default(3),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
