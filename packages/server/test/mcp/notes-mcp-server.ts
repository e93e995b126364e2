import { createServer, type IncomingMessage } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { protectedResourceMetadataUrl, requireAccessToken, serveProtectedResourceMetadata } from '@mandate/resource';

/** An MCP server with two tools, protected by @mandate/resource as the MCP authorization specification requires. */
export interface NotesMcpServer {
  /** The MCP endpoint, which is also the resource identifier (the token audience). */
  url: string;
  notes: string[];
  close(): Promise<void>;
}

export const READ_SCOPE = 'notes.read';
export const WRITE_SCOPE = 'notes.write';

/**
 * Starts the server on a free loopback port. Every MCP request needs a token with `notes.read`;
 * calling `add_note` also needs `notes.write`, so a client that asked for reading only gets a 403
 * `insufficient_scope` naming both scopes, and steps up. The protected resource metadata offers
 * only `notes.read`, so that a client asks for the least at first.
 */
export async function startNotesMcpServer(issuer: string): Promise<NotesMcpServer> {
  const notes: string[] = [];
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/mcp`;

  const resourceMetadataUrl = protectedResourceMetadataUrl(url);
  const serveMetadata = serveProtectedResourceMetadata({ resource: url, issuer, scopes: [READ_SCOPE], resourceName: 'Notes', dpopAlgorithms: [] });
  const readAccess = requireAccessToken({ issuer, audience: url, resourceMetadataUrl, scopes: [READ_SCOPE], dpop: false });
  const writeAccess = requireAccessToken({ issuer, audience: url, resourceMetadataUrl, scopes: [READ_SCOPE, WRITE_SCOPE], dpop: false });

  server.on('request', (request, response) => {
    void (async () => {
      if (serveMetadata(request, response)) return;
      if (new URL(request.url ?? '/', url).pathname !== '/mcp') return void response.writeHead(404).end();
      if (request.method !== 'POST') return void response.writeHead(405, { allow: 'POST' }).end();

      const body = await readJson(request);
      const claims = await (callsTool(body, 'add_note') ? writeAccess : readAccess)(request, response);
      if (claims === undefined) return;

      // Stateless mode: one MCP server and transport per request.
      const mcp = notesServer(notes);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      response.on('close', () => void transport.close());
      await mcp.connect(transport);
      await transport.handleRequest(request, response, body);
    })().catch(() => {
      if (!response.headersSent) response.writeHead(500).end();
    });
  });

  return {
    url,
    notes,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function notesServer(notes: string[]): McpServer {
  const mcp = new McpServer({ name: 'notes', version: '1.0.0' });
  mcp.registerTool('list_notes', { description: 'Lists the notes' }, () => ({ content: [{ type: 'text', text: JSON.stringify(notes) }] }));
  mcp.registerTool('add_note', { description: 'Adds a note', inputSchema: { text: z.string().max(200) } }, ({ text }) => {
    notes.push(text);
    return { content: [{ type: 'text', text: `added ${text}` }] };
  });
  return mcp;
}

function callsTool(body: unknown, name: string): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((message) => {
    const call = message as { method?: unknown; params?: { name?: unknown } };
    return call.method === 'tools/call' && call.params?.name === name;
  });
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

