import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { adminOperations, emptyBody, type AdminOperation } from './api.ts';
import { actorOf, adminAuthentication } from './auth.ts';
import { parseInput } from './input.ts';
import { buildOpenApiDocument } from './openapi.ts';

export const ADMIN_API_PREFIX = '/admin/v1';

const noQuery = z.strictObject({});

/** Registers the admin API under /admin/v1: every operation needs an admin access token except the OpenAPI document. */
export async function registerAdminRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const document = buildOpenApiDocument(ctx.config.issuer, ADMIN_API_PREFIX, adminOperations);

  await app.register(
    async (admin) => {
      // The admin API takes JSON only; the server-wide form parser would turn a form into an object that validates.
      admin.removeContentTypeParser('application/x-www-form-urlencoded');
      admin.get('/openapi.json', async (_request, reply) => reply.header('cache-control', 'no-cache').send(document));

      await admin.register(async (secured) => {
        secured.addHook('onRequest', adminAuthentication(ctx));
        for (const operation of adminOperations) registerOperation(secured, ctx, operation);
      });
    },
    { prefix: ADMIN_API_PREFIX },
  );
}

function registerOperation(app: FastifyInstance, ctx: ServerContext, operation: AdminOperation): void {
  app.route({
    method: operation.method,
    url: operation.path,
    handler: async (request, reply) => {
      if (operation.query === undefined) parseInput(noQuery, request.query ?? {}, 'query');
      if (operation.body === emptyBody) parseInput(emptyBody, request.body === undefined ? {} : request.body);

      const result = await operation.handle(ctx, {
        params: request.params as Record<string, string>,
        query: request.query,
        body: request.body,
        actor: actorOf(request),
      });
      return reply.code(result.status).header('cache-control', 'no-store').send(result.body);
    },
  });
}
