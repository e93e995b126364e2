/**
 * The upstream API for the gateway benchmark: `GET /api/items` returns a small JSON document
 * when the request carries `Authorization: Bearer <UPSTREAM_CREDENTIAL>`, and 401 otherwise.
 * The benchmark calls it directly with that credential, and through Mandate's gateway, which
 * injects the credential it stores for the person. It prints
 * `Upstream API is listening on <url>` when ready.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const credential = process.env.UPSTREAM_CREDENTIAL;
if (credential === undefined || credential === '') {
  process.stderr.write('upstream: UPSTREAM_CREDENTIAL is missing; start this server through bench/run.ts.\n');
  process.exit(1);
}
const expectedAuthorization = `Bearer ${credential}`;
const items = JSON.stringify({ items: [{ id: 1, name: 'first' }, { id: 2, name: 'second' }] });

const server = createServer((request, response) => {
  // The benchmark sends GET requests without a body; drain anything else so keep-alive continues.
  request.resume();

  if (request.method !== 'GET' || request.url !== '/api/items') {
    response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
    return;
  }
  if (request.headers.authorization !== expectedAuthorization) {
    response.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_credential"}');
    return;
  }
  response.writeHead(200, { 'content-type': 'application/json' }).end(items);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`Upstream API is listening on http://127.0.0.1:${port}\n`);
});
process.once('SIGTERM', () => server.close());
