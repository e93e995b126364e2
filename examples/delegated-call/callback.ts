import { createServer } from 'node:http';

/** The agent's redirect endpoint on loopback: it records each authorization response URL. */
export interface CallbackServer {
  url: string;
  next(): Promise<URL>;
  close(): Promise<void>;
}

/** How long the example waits for the browser to come back from the authorization server. */
const CALLBACK_TIMEOUT_MS = 30_000;

export async function startCallbackServer(): Promise<CallbackServer> {
  const waiting: Array<(url: URL) => void> = [];
  const received: URL[] = [];
  const server = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain' }).end('Done. You can close this window.');
    const url = new URL(request.url ?? '/', base);
    // Browsers also ask for /favicon.ico; only the redirect endpoint counts.
    if (url.pathname !== '/callback') return;
    const resolve = waiting.shift();
    if (resolve === undefined) received.push(url);
    else resolve(url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const base = `http://127.0.0.1:${port}/callback`;

  return {
    url: base,
    next: () => {
      const ready = received.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`No authorization response reached ${base} within ${CALLBACK_TIMEOUT_MS} ms.`)), CALLBACK_TIMEOUT_MS);
        waiting.push((url) => {
          clearTimeout(timer);
          resolve(url);
        });
      });
    },
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
