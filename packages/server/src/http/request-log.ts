import { redactCredentialParameters } from './query-parameters.ts';

/** The parts of a Fastify request that its log line shows. */
interface LoggedRequest {
  method?: unknown;
  url?: unknown;
  host?: unknown;
  ip?: unknown;
  socket?: { remotePort?: unknown } | null;
}

/**
 * Serializes the `req` field of a log line with the fields Fastify's own serializer writes,
 * but with the value of every credential parameter in the URL's query replaced
 * (`/gateway/mail/inbox?access_token=[redacted]`). Fastify logs each request's URL before any
 * route runs, so this is the only place that can keep a token in the query out of the log.
 */
export function serializeRequestForLog(request: LoggedRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: typeof request.url === 'string' ? redactCredentialParameters(request.url) : undefined,
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}
