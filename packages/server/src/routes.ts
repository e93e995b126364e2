import type { RouteModule } from './http/app.ts';
import { registerOAuthRoutes } from './oauth/routes.ts';
import { registerIdentityRoutes } from './identity/routes.ts';
import { registerAdminRoutes } from './admin/routes.ts';
import { registerGatewayRoutes } from './gateway/routes.ts';
import { registerApprovalRoutes } from './approvals/routes.ts';
import { registerDelegationPages } from './revocation/routes.ts';
import { registerAuthzenRoutes } from './authzen/routes.ts';
import { registerStaticRoutes } from './web/static.ts';

/** Every route module of the server, in registration order. */
export const routeModules: RouteModule[] = [
  registerStaticRoutes,
  registerOAuthRoutes,
  registerIdentityRoutes,
  registerAdminRoutes,
  registerGatewayRoutes,
  registerApprovalRoutes,
  registerDelegationPages,
  registerAuthzenRoutes,
];
