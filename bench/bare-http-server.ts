/**
 * The baseline for the AuthZEN benchmark: a bare `node:http` server that reads each request body,
 * parses it as JSON and returns `{"decision":true}`. It has no authentication, token check,
 * database, policy or audit log, so it shows the most requests per second that this machine's
 * Node.js and the load generator manage for a JSON request of the same size.
 *
 * It prints `Bare node:http server is listening on <url>` when ready.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

const MAX_BODY_BYTES = 64 * 1024;
const DECISION = JSON.stringify({ decision: true });

const server = createServer((request, response) => {
  readJson(request)
    .then((parsed) => {
      if (parsed === undefined) {
        response.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}');
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(DECISION);
    })
    .catch((error: unknown) => {
      process.stderr.write(`bare server: request failed: ${(error as Error).message}\n`);
      response.writeHead(500).end();
    });
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`Bare node:http server is listening on http://127.0.0.1:${port}\n`);
});
process.once('SIGTERM', () => server.close());

/** Reads and parses the body, or returns undefined when it is too large or not JSON. */
async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
