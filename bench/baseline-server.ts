/**
 * The baseline for the token benchmark: a bare `node:http` token endpoint that does the
 * per-request work of Mandate's `client_credentials` grant and nothing else. It parses the form
 * body, authenticates the one client with `client_secret_basic` (SHA-256 digest compared in
 * constant time), checks grant type, resource and scope, and signs the same claims with jose
 * EdDSA. It has no database, policy, audit log, rate limit or Fastify.
 *
 * Settings come from BASELINE_* variables that `bench/run.ts` sets; the secret itself is never
 * passed, only its digest. It prints `Baseline token endpoint is listening on <url>` when ready.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, generateKeyPair } from 'jose';

const MAX_BODY_BYTES = 64 * 1024;

const settings = {
  issuer: requiredEnv('BASELINE_ISSUER'),
  audience: requiredEnv('BASELINE_AUDIENCE'),
  scope: requiredEnv('BASELINE_SCOPE'),
  clientId: requiredEnv('BASELINE_CLIENT_ID'),
  secretDigest: Buffer.from(requiredEnv('BASELINE_SECRET_SHA256'), 'hex'),
  lifetimeSeconds: Number(requiredEnv('BASELINE_TOKEN_TTL_SECONDS')),
};

const { privateKey } = await generateKeyPair('EdDSA');
const kid = randomBytes(8).toString('base64url');

const server = createServer((request, response) => {
  handleToken(request, response).catch((error: unknown) => {
    process.stderr.write(`baseline: request failed: ${(error as Error).message}\n`);
    sendJson(response, 500, { error: 'server_error' });
  });
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`Baseline token endpoint is listening on http://127.0.0.1:${port}\n`);
});
process.once('SIGTERM', () => server.close());

async function handleToken(request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (request.method !== 'POST' || request.url !== '/token') return sendJson(response, 404, { error: 'invalid_request' });

  const body = await readBody(request);
  if (body === undefined) return sendJson(response, 413, { error: 'invalid_request' });
  const form = new URLSearchParams(body);

  if (!authenticateClient(request.headers.authorization)) return sendJson(response, 401, { error: 'invalid_client' });
  if (form.get('grant_type') !== 'client_credentials') return sendJson(response, 400, { error: 'unsupported_grant_type' });
  if (form.get('resource') !== settings.audience) return sendJson(response, 400, { error: 'invalid_target' });
  if (form.get('scope') !== settings.scope) return sendJson(response, 400, { error: 'invalid_scope' });

  const iat = Math.floor(Date.now() / 1000);
  const claims = {
    iss: settings.issuer,
    sub: settings.clientId,
    aud: settings.audience,
    client_id: settings.clientId,
    scope: settings.scope,
    iat,
    exp: iat + settings.lifetimeSeconds,
    jti: `at_${randomBytes(16).toString('base64url')}`,
    tenant: 'default',
  };
  const token = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid }).sign(privateKey);
  sendJson(response, 200, { access_token: token, token_type: 'Bearer', expires_in: settings.lifetimeSeconds, scope: settings.scope });
}

/** RFC 6749 §2.3.1: client_secret_basic, with the id and secret form-urlencoded before Base64. */
function authenticateClient(header: string | undefined): boolean {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header?.trim() ?? '');
  if (match?.[1] === undefined) return false;

  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;

  let clientId: string;
  let secret: string;
  try {
    clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
  } catch {
    return false;
  }

  const presented = createHash('sha256').update(secret).digest();
  return clientId === settings.clientId && timingSafeEqual(presented, settings.secretDigest);
}

/** Reads the body as text, or returns undefined when it exceeds MAX_BODY_BYTES. */
async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', pragma: 'no-cache' });
  response.end(JSON.stringify(body));
}

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    process.stderr.write(`baseline: ${name} is missing; start this server through bench/run.ts.\n`);
    process.exit(1);
  }
  return value;
}
