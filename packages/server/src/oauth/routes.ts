import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { registerAuthorizeRoutes } from './authorize.ts';
import { registerIntrospectionEndpoint } from './introspection.ts';
import { registerMetadataRoutes } from './metadata.ts';
import { registerParEndpoint } from './par.ts';
import { registerRevocationEndpoint } from './revocation-endpoint.ts';
import { registerTokenEndpoint } from './token-endpoint.ts';
import { registerUserinfoEndpoint } from './userinfo.ts';
import { registerDynamicRegistrationRoute } from '../registration/dynamic-registration.ts';
import { registerBackchannelAuthenticationEndpoint } from './ciba/backchannel-endpoint.ts';

export function registerOAuthRoutes(app: FastifyInstance, ctx: ServerContext): void {
  registerMetadataRoutes(app, ctx);
  registerAuthorizeRoutes(app, ctx);
  registerTokenEndpoint(app, ctx);
  registerParEndpoint(app, ctx);
  registerRevocationEndpoint(app, ctx);
  registerIntrospectionEndpoint(app, ctx);
  registerUserinfoEndpoint(app, ctx);
  registerDynamicRegistrationRoute(app, ctx);
  registerBackchannelAuthenticationEndpoint(app, ctx);
}
