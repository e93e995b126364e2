export { MandateAgent } from './mandate-agent.ts';
export type { MandateAgentOptions, ScopeInput } from './mandate-agent.ts';
export type { GatewayRequest } from './gateway.ts';
export type { ApprovalState, ApprovalStatus, ApprovalStatusRequest, ApprovalWaitOptions, PendingApproval } from './approval-wait.ts';
export type { ApprovalFailure } from './approval-errors.ts';
export {
  ApprovalDeniedError,
  ApprovalExpiredError,
  ApprovalMismatchError,
  ApprovalRejectedError,
  ApprovalTimeoutError,
} from './approval-errors.ts';
export type { ExchangeTokenType, TokenExchangeRequest } from './token-exchange.ts';
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
