export { MandateAgent } from './mandate-agent.ts';
export type { MandateAgentOptions, ScopeInput } from './mandate-agent.ts';
export type { GatewayRequest } from './gateway.ts';
export type { TokenResponse, TokenType } from './token-response.ts';
export type { DpopAlgorithm, DpopKey } from './dpop-key.ts';
export type { ClientAssertionAlgorithm, ClientAssertionKey } from './signing-algorithm.ts';
export {
  ApprovalRequiredError,
  ForbiddenError,
  InvalidResponseError,
  TokenEndpointError,
  UnauthorizedError,
} from './errors.ts';
