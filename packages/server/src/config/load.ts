import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { configSchema, type Config } from './schema.ts';

/** Raised when the configuration is invalid; its message names the setting and the fix. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const ENV_PREFIX = 'MANDATE_';

function envNameOf(key: string): string {
  return ENV_PREFIX + key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase();
}

/** Reads settings from the JSON file named by MANDATE_CONFIG, then from MANDATE_* variables, which win. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, unknown> = {}): Config {
  const fromFile = readConfigFile(env.MANDATE_CONFIG);

  const fromEnv: Record<string, unknown> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[envNameOf(key)];
    if (value !== undefined && value !== '') fromEnv[key] = value;
  }

  const merged: Record<string, unknown> = { ...fromFile, ...fromEnv, ...overrides };
  if (merged.issuer === undefined) {
    const port = merged.port ?? 8080;
    merged.issuer = `http://127.0.0.1:${String(port)}`;
  }
  return parseConfig(merged);
}

export function parseConfig(input: Record<string, unknown>): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) throw new ConfigError(describeIssues(result.error));

  const config = result.data;
  if (config.mode === 'production' && config.masterKey === undefined) {
    throw new ConfigError(
      'Invalid setting masterKey: production mode needs an explicit master key. Set MANDATE_MASTER_KEY to 32 random bytes in base64url (for example from `mandate keygen`).',
    );
  }
  if (config.mode === 'production' && config.allowLoopbackUpstreams) {
    throw new ConfigError('Invalid setting allowLoopbackUpstreams: it is for tests and examples only. Unset MANDATE_ALLOW_LOOPBACK_UPSTREAMS in production.');
  }
  if (config.mode === 'production' && config.allowLoopbackClientMetadata) {
    throw new ConfigError('Invalid setting allowLoopbackClientMetadata: it is for tests only. Unset MANDATE_ALLOW_LOOPBACK_CLIENT_METADATA in production.');
  }
  return config;
}

function describeIssues(error: z.ZodError): string {
  const lines = error.issues.map((issue) => {
    const key = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') {
      return `Unknown setting ${issue.keys.join(', ')}: remove it or check its spelling.`;
    }
    const name = key === '' ? 'configuration' : `${key} (${envNameOf(key)})`;
    return `Invalid setting ${name}: ${issue.message}.`;
  });
  return lines.join(' ');
}

function readConfigFile(path: string | undefined): Record<string, unknown> {
  if (path === undefined || path === '') return {};

  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read the configuration file ${path} named by MANDATE_CONFIG: ${(error as Error).message}.`);
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`The configuration file ${path} is not valid JSON: fix its syntax or unset MANDATE_CONFIG.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`The configuration file ${path} must contain one JSON object of settings.`);
  }
  return parsed as Record<string, unknown>;
}
