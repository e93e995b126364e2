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
    /**
     * Maximum age in seconds of the sign-in with which a person approves a request. A person who
     * signed in longer ago is sent to sign in again, and then back to the approval page.
     */
    approvalMaxAuthAgeSeconds: z.coerce.number().int().min(30).max(24 * 3600).default(600),
    /** URL that receives a signed `approval.requested` webhook for each new approval; needs `approvalWebhookSecret`. */
    approvalWebhookUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Signing secret of the approval webhook: `whsec_` followed by 24 to 64 random bytes in base64 (Standard Webhooks 1.0). */
    approvalWebhookSecret: z
      .string()
      .refine(isWebhookSecret, { message: 'must be whsec_ followed by 24 to 64 random bytes in base64, for example whsec_ and the output of `openssl rand -base64 32`' })
      .optional(),
    authorizationCodeTtlSeconds: z.coerce.number().int().min(10).max(600).default(60),
    /** Allows gateway upstreams on loopback and plain http; tests and examples set it. */
    allowLoopbackUpstreams: z.union([z.boolean(), z.stringbool()]).default(false),
    /**
     * Loopback test mode for client ID metadata documents: their URLs may use http and point at
     * loopback addresses. Other private address ranges stay refused. Tests set it.
     */
    allowLoopbackClientMetadata: z.union([z.boolean(), z.stringbool()]).default(false),
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
    /** CIBA: lifetime in seconds of a backchannel authentication request that names no `requested_expiry`. */
    cibaDefaultExpirySeconds: z.coerce.number().int().min(10).max(24 * 3600).default(300),
    /** CIBA: maximum lifetime in seconds of a backchannel authentication request; a longer `requested_expiry` is shortened to it. */
    cibaMaxExpirySeconds: z.coerce.number().int().min(10).max(24 * 3600).default(1800),
    /** CIBA: minimum seconds an agent waits between token requests for one `auth_req_id` (the `interval`). */
    cibaPollIntervalSeconds: z.coerce.number().int().min(1).max(60).default(5),
  })
  .strict()
  .superRefine(checkApprovalWebhook)
  .superRefine(checkCibaExpiry);

/** Returns true for a Standard Webhooks symmetric secret in canonical base64, so a typo cannot shorten the key. */
function isWebhookSecret(value: string): boolean {
  if (!value.startsWith('whsec_')) return false;
  const encoded = value.slice('whsec_'.length);
  const key = Buffer.from(encoded, 'base64');
  return key.length >= 24 && key.length <= 64 && key.toString('base64') === encoded;
}

/** Checks that the approval webhook has both its URL and its secret, and https in production. */
function checkApprovalWebhook(config: { mode: string; approvalWebhookUrl?: string | undefined; approvalWebhookSecret?: string | undefined }, context: z.RefinementCtx): void {
  if (config.approvalWebhookUrl !== undefined && config.approvalWebhookSecret === undefined) {
    context.addIssue({ code: 'custom', path: ['approvalWebhookSecret'], message: 'is required when approvalWebhookUrl is set, so that receivers can verify each webhook' });
  }
  if (config.approvalWebhookSecret !== undefined && config.approvalWebhookUrl === undefined) {
    context.addIssue({ code: 'custom', path: ['approvalWebhookUrl'], message: 'is required when approvalWebhookSecret is set' });
  }
  if (config.mode === 'production' && config.approvalWebhookUrl?.startsWith('http:') === true) {
    context.addIssue({ code: 'custom', path: ['approvalWebhookUrl'], message: 'must use https in production mode, because webhooks describe people\'s pending requests' });
  }
}

/** Checks that the default lifetime of a CIBA request is within the maximum. */
function checkCibaExpiry(config: { cibaDefaultExpirySeconds: number; cibaMaxExpirySeconds: number }, context: z.RefinementCtx): void {
  if (config.cibaDefaultExpirySeconds > config.cibaMaxExpirySeconds) {
    context.addIssue({ code: 'custom', path: ['cibaDefaultExpirySeconds'], message: `must not exceed cibaMaxExpirySeconds (${config.cibaMaxExpirySeconds})` });
  }
}

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
