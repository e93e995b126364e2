import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

/** How the document server responds on one path. */
export interface DocumentResponse {
  status?: number;
  headers?: Record<string, string>;
  /** A string is sent as it is; anything else is sent as JSON. */
  body?: unknown;
  /** Milliseconds to wait before sending the status line and headers. */
  headerDelayMs?: number;
  /** Sends the body one byte per this many milliseconds instead of all at once. */
  tricklePerByteMs?: number;
}

/** A host for client ID metadata documents on 127.0.0.1 that counts what reaches it. */
export interface DocumentServer {
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  origin: string;
  port: number;
  /** Sets the response for a path; a path without one gets 404. */
  serve(path: string, response: DocumentResponse): void;
  /** Requests received for a path. */
  requestsFor(path: string): number;
  /** TCP connections accepted so far, on any path. */
  connections(): number;
  close(): Promise<void>;
}

/** Starts a document server on 127.0.0.1, over TLS when `tls` gives a certificate and key in PEM. */
export async function startDocumentServer(tls?: { cert: string; key: string }): Promise<DocumentServer> {
  const responses = new Map<string, DocumentResponse>();
  const requests = new Map<string, number>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let connectionCount = 0;

  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const path = request.url ?? '/';
    requests.set(path, (requests.get(path) ?? 0) + 1);
    const planned = responses.get(path) ?? { status: 404, headers: { 'content-type': 'text/plain' }, body: 'not found' };
    const body = typeof planned.body === 'string' ? planned.body : JSON.stringify(planned.body ?? {});

    const send = () => {
      response.writeHead(planned.status ?? 200, { 'content-type': 'application/json', ...planned.headers });
      if (planned.tricklePerByteMs === undefined) return response.end(body);
      sendSlowly(response, Buffer.from(body), planned.tricklePerByteMs, timers);
    };
    if (planned.headerDelayMs === undefined) send();
    else timers.add(setTimeout(send, planned.headerDelayMs));
  };

  const server: Server = tls === undefined ? createHttpServer(handle) : createHttpsServer(tls, handle);
  server.on('connection', (socket: Socket) => {
    connectionCount += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    origin: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    port,
    serve: (path, response) => responses.set(path, response),
    requestsFor: (path) => requests.get(path) ?? 0,
    connections: () => connectionCount,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function sendSlowly(response: ServerResponse, body: Buffer, perByteMs: number, timers: Set<NodeJS.Timeout>): void {
  let offset = 0;
  const timer = setInterval(() => {
    if (response.destroyed || offset >= body.length) {
      clearInterval(timer);
      if (!response.destroyed) response.end();
      return;
    }
    response.write(body.subarray(offset, offset + 1));
    offset += 1;
  }, perByteMs);
  timers.add(timer);
}
