import { bootstrapAdminClient } from '../../src/admin/bootstrap.ts';
import type { TestServer } from '../harness.ts';

export interface AdminApi {
  token: string;
  clientId: string;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; type: string; json: Record<string, unknown>; headers: Headers }>;
}

/** Requests a token at the real /token endpoint with client_credentials (RFC 6749 §4.4) and client_secret_basic. */
export async function clientCredentialsToken(server: TestServer, clientId: string, secret: string, resource: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Creates the admin client as `mandate init` does, obtains an admin token and returns a JSON caller for /admin/v1. */
export async function adminApi(server: TestServer): Promise<AdminApi> {
  const admin = await bootstrapAdminClient(server.ctx, {}, 'test');
  const issued = await clientCredentialsToken(server, admin.client_id, admin.client_secret, `${server.issuer}/admin`);
  if (issued.status !== 200 || typeof issued.body.access_token !== 'string') throw new Error(`The admin token request failed: ${issued.status} ${JSON.stringify(issued.body)}`);
  const token = issued.body.access_token;

  return {
    token,
    clientId: admin.client_id,
    async call(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers: { authorization: `Bearer ${token}`, ...headers } };
      if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
      }
      const response = await fetch(`${server.url}/admin/v1${path}`, init);
      const text = await response.text();
      return { status: response.status, type: response.headers.get('content-type') ?? '', json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: response.headers };
    },
  };
}
