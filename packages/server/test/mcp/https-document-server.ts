import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An HTTPS server on loopback that serves one JSON document, with a self-signed certificate for 127.0.0.1. */
export interface HttpsDocumentServer {
  /** The document's URL; a client ID metadata document names it as its client_id. */
  url: string;
  /** The PEM certificate a fetching server must trust. */
  certificate: string;
  /** How many times the document was fetched. */
  fetches: number;
  setDocument(document: unknown): void;
  close(): Promise<void>;
}

export async function startHttpsDocumentServer(path: string): Promise<HttpsDocumentServer> {
  const { key, certificate } = selfSignedCertificate();
  let body = '{}';
  const server = createServer({ key, cert: certificate }, (request, response) => {
    if (request.url !== path) return void response.writeHead(404).end();
    state.fetches += 1;
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  const state: HttpsDocumentServer = {
    url: `https://127.0.0.1:${port}${path}`,
    certificate,
    fetches: 0,
    setDocument: (document) => {
      body = JSON.stringify(document);
    },
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return state;
}

/** Makes a P-256 key and a one-day certificate for IP 127.0.0.1 with Debian's openssl. */
function selfSignedCertificate(): { key: string; certificate: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), certificate: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
