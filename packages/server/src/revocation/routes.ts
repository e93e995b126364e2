import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';

export function registerDelegationPages(_app: FastifyInstance, _ctx: ServerContext): void {}
