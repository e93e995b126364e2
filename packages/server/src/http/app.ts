import Fastify, { type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { ServerContext } from '../context.ts';
import { handleError } from './error-handler.ts';
import { registerFormParser } from './form.ts';
import { registerNulCharacterCheck } from './nul-characters.ts';
import { newId } from '../store/ids.ts';

export type RouteModule = (app: FastifyInstance, ctx: ServerContext) => void | Promise<void>;

/** Builds the Fastify app with the security headers, parsers, error mapping and every route module. */
export async function buildApp(ctx: ServerContext, routes: RouteModule[]): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.logger,
    genReqId: () => newId('req'),
    trustProxy: false,
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    // A metadata document client's client_id is its URL, and admin paths carry it.
    routerOptions: { maxParamLength: 2048 },
    // Malformed percent-encoding and over-long path parameters are rejected by the router before
    // any route runs; this sends them through handleError too, instead of Fastify's own JSON.
    frameworkErrors: handleError,
  });

  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) => {
    const body = request.url.startsWith('/admin/')
      ? { type: 'about:blank', title: 'Not Found', status: 404, detail: `No route ${request.method} ${request.url.split('?')[0] ?? ''}.` }
      : { error: 'invalid_request', error_description: 'Not found.' };
    return reply.code(404).type(request.url.startsWith('/admin/') ? 'application/problem+json' : 'application/json').send(body);
  });

  registerFormParser(app);
  registerNulCharacterCheck(app);
  await app.register(cookie);
  // Cookie-based CSRF tokens (app.csrfProtection) guard only the sign-in form, which has no
  // session yet. Every form under a session takes a token of that session (identity/session-csrf.ts).
  await app.register(csrf, { cookieOpts: { httpOnly: true, sameSite: 'lax', path: '/', secure: ctx.config.issuer.startsWith('https:') }, sessionPlugin: '@fastify/cookie' });
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'none'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        // Over plain http (loopback development) this directive would send form posts to https.
        upgradeInsecureRequests: ctx.config.issuer.startsWith('https:') ? [] : null,
      },
    },
    frameguard: { action: 'deny' },
    hsts: ctx.config.issuer.startsWith('https:'),
  });
  await app.register(rateLimit, { global: false });

  for (const register of routes) await register(app, ctx);
  return app;
}
