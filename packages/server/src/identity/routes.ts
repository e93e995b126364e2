import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';

export function registerIdentityRoutes(_app: FastifyInstance, _ctx: ServerContext): void {}
