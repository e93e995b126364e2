import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as the fake server received it. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** The reply the fake server sends; `body` is sent as JSON unless it is a string. */
export interface FakeReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * A stand-in for the Mandate server on 127.0.0.1. It serves RFC 8414 metadata
 * itself, records every other request and replies with what `handler` returns.
 */
export class FakeMandateServer {
  readonly requests: RecordedRequest[] = [];
  metadataRequestCount = 0;
  /** Overrides the `issuer` member of the published metadata when set. */
  publishedIssuer: string | undefined;
  handler: (request: RecordedRequest) => FakeReply | Promise<FakeReply> = () => ({ status: 404 });

  private constructor(
    private readonly server: Server,
    readonly issuer: string,
  ) {}

  static async start(): Promise<FakeMandateServer> {
    let fake: FakeMandateServer | undefined;
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };

      let reply: FakeReply;
      if (recorded.path === '/.well-known/oauth-authorization-server') {
        fake!.metadataRequestCount += 1;
        reply = {
          status: 200,
          body: {
            issuer: fake!.publishedIssuer ?? fake!.issuer,
            token_endpoint: `${fake!.issuer}/token`,
            jwks_uri: `${fake!.issuer}/jwks`,
            authorization_endpoint: `${fake!.issuer}/authorize`,
          },
        };
      } else {
        fake!.requests.push(recorded);
        reply = await fake!.handler(recorded);
      }

      const headers: Record<string, string> = { ...reply.headers };
      let payload: string | undefined;
      if (typeof reply.body === 'string') {
        payload = reply.body;
      } else if (reply.body !== undefined) {
        headers['content-type'] = 'application/json';
        payload = JSON.stringify(reply.body);
      }
      res.writeHead(reply.status, headers);
      res.end(payload);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;

    fake = new FakeMandateServer(server, `http://127.0.0.1:${port}`);
    return fake;
  }

  /** Clears the recorded requests and the handler between tests. */
  reset(): void {
    this.requests.length = 0;
    this.metadataRequestCount = 0;
    this.publishedIssuer = undefined;
    this.handler = () => ({ status: 404 });
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.server.close((error) => (error ? reject(error) : resolve())));
  }
}

/** Parses a recorded form-encoded body into a plain object. */
export function formParameters(request: RecordedRequest): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(request.body));
}
