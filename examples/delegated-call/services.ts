import { createServer, type IncomingMessage, type Server } from 'node:http';
import { requireAccessToken, type AuthenticatedRequest } from '@mandate/resource';

/** A running loopback HTTP server. */
export interface LocalServer {
  url: string;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return `http://127.0.0.1:${port}`;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface UpstreamRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
}

/**
 * Starts a third-party mail API that accepts only the person's own API key. It echoes the key it
 * received in one header and one body field, so the test can prove the gateway redacts it.
 */
export async function startMailUpstream(apiKey: string): Promise<LocalServer & { received: UpstreamRequest[] }> {
  const received: UpstreamRequest[] = [];
  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    received.push({ method: request.method ?? '', path: request.url ?? '', authorization: request.headers.authorization, body });

    if (request.headers.authorization !== `Bearer ${apiKey}`) {
      response.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'bad api key' }));
      return;
    }
    const reply = request.method === 'POST' ? { sent: true, echo: JSON.parse(body || '{}') as unknown } : { messages: [{ id: 1, subject: 'Quarterly report' }] };
    response.writeHead(200, { 'content-type': 'application/json', 'x-debug-key': apiKey }).end(JSON.stringify({ ...reply, seen_key: apiKey }));
  });
  const url = await listen(server);
  return { url, received, close: () => close(server) };
}

/** Starts an API of the organization that verifies Mandate's access tokens itself with @mandate/resource. */
export async function startNotesApi(issuer: string, audience: string): Promise<LocalServer & { callers: Array<{ sub: string; actor: string | undefined }> }> {
  const callers: Array<{ sub: string; actor: string | undefined }> = [];
  const guard = requireAccessToken({ issuer, audience, scopes: ['notes.read'] });
  const server = createServer(async (request, response) => {
    const claims = await guard(request, response);
    if (claims === undefined) return;
    callers.push({ sub: claims.sub, actor: claims.act?.sub });
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ notes: ['Buy milk'], for: claims.sub, by: claims.act?.sub ?? null }));
  });
  const url = await listen(server);
  return { url, callers, close: () => close(server) };
}

export type { AuthenticatedRequest };

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
