import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidRequest } from '../oauth/errors.ts';
import { badRequest } from './problem.ts';

/**
 * Rejects a request whose path parameters, query or parsed body contain U+0000. PostgreSQL
 * text columns cannot store NUL (SQLSTATE 22021), so such a value would otherwise fail inside
 * a query on one database and be stored on the other. The gateway's query and raw body are
 * forwarded as received, so only its path parameters are checked here.
 */
export function registerNulCharacterCheck(app: FastifyInstance): void {
  app.addHook('preValidation', async (request: FastifyRequest) => {
    const isGateway = request.url.startsWith('/gateway/');
    const inputs = isGateway ? [request.params] : [request.params, request.query, request.body];
    if (!inputs.some(containsNul)) return;

    const detail = 'The request contains a NUL character (%00), which no parameter may contain.';
    throw request.url.startsWith('/admin/') ? badRequest(detail) : new InvalidRequest(detail);
  });
}

/** Reports whether any string or member name in `input` contains NUL. It walks with an explicit stack, so a deeply nested JSON body cannot overflow the call stack. */
function containsNul(input: unknown): boolean {
  const pending: unknown[] = [input];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return true;
      continue;
    }
    if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) continue;
    for (const [name, member] of Object.entries(value)) {
      if (name.includes('\u0000')) return true;
      pending.push(member);
    }
  }
  return false;
}
