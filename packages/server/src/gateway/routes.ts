import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { issueDpopNonce } from '../oauth/dpop/nonce.ts';
import { runGatewayCall } from './pipeline.ts';

/** Largest request body the gateway accepts; approval pages show it and its hash binds approvals. */
export const MAX_GATEWAY_REQUEST_BYTES = 1024 * 1024;

const PREFIX = '/gateway/';

/**
 * Registers `ALL /gateway/:resource/*` in a plugin of its own, where every body of any
 * content type (or none) arrives as a Buffer, unparsed, so it is forwarded byte for byte and
 * its hash binds approvals.
 */
export async function registerGatewayRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  await app.register(async (gateway) => {
    gateway.removeAllContentTypeParsers();
    gateway.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_GATEWAY_REQUEST_BYTES }, (_request, body, done) => done(null, body));

    gateway.all<{ Params: { resource: string } }>(`${PREFIX}:resource/*`, async (request, reply) => handleGatewayRequest(ctx, request, reply));
  });
}

async function handleGatewayRequest(ctx: ServerContext, request: FastifyRequest<{ Params: { resource: string } }>, reply: FastifyReply): Promise<FastifyReply> {
  const response = await runGatewayCall(ctx, {
    resourceName: request.params.resource,
    method: request.method,
    target: targetAfterResource(request.raw.url ?? request.url),
    headers: request.headers,
    body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
    requestId: request.id,
  });

  // RFC 9449 §9: a fresh nonce with each DPoP response spares the agent a use_dpop_nonce round trip.
  if (ctx.config.dpopNoncesRequired && /^DPoP /i.test(request.headers.authorization ?? '')) reply.header('dpop-nonce', issueDpopNonce(ctx));
  // The upstream's content is served from Mandate's origin: a sandboxed, script-free policy keeps it inert.
  return reply.code(response.status).headers(response.headers).header('content-security-policy', "default-src 'none'; sandbox").send(response.body);
}

/** The raw path and query after `/gateway/<resource>`, still percent-encoded as the client sent them. */
function targetAfterResource(rawUrl: string): string {
  const queryStart = rawUrl.indexOf('?');
  const rawPath = queryStart === -1 ? rawUrl : rawUrl.slice(0, queryStart);
  const slash = rawPath.indexOf('/', PREFIX.length);
  return slash === -1 ? '/' : rawUrl.slice(slash);
}
