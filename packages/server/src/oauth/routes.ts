import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { registerAuthorizeRoutes } from './authorize.ts';
import { registerMetadataRoutes } from './metadata.ts';
import { registerTokenEndpoint } from './token-endpoint.ts';
import { registerUserinfoEndpoint } from './userinfo.ts';

export function registerOAuthRoutes(app: FastifyInstance, ctx: ServerContext): void {
  registerMetadataRoutes(app, ctx);
  registerAuthorizeRoutes(app, ctx);
  registerTokenEndpoint(app, ctx);
  registerUserinfoEndpoint(app, ctx);
}
