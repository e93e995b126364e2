import type { ServerContext } from '../context.ts';
import { findClient } from '../agents/clients.ts';
import { CallerRejected, checkDelegation, verifyDelegatedToken } from '../gateway/authenticate.ts';
import type { AccessTokenClaims } from '../oauth/access-token.ts';
import { boundJktOf } from '../oauth/dpop/resource-request.ts';
import type { ResourceWithActions } from '../resources/registry.ts';

/** The parties of a decision, read from a verified access token and never from the PEP. */
export interface TokenSubject {
  claims: AccessTokenClaims;
  /** The person the agent acts for, absent for an agent's own client_credentials token. */
  userId?: string | undefined;
  agentId: string;
  /** The agents that handed a delegated token on to `agentId`, the nearest first. */
  delegatingAgentIds: string[];
  /** The token scope, narrowed to the delegation's current scope for a delegated token. */
  scope: string[];
  delegationId?: string | undefined;
  /** RFC 9449 §6.1 `cnf.jkt` of a DPoP-bound token. */
  jkt?: string | undefined;
}

/** Why a subject token is not evaluated: the failed check, for the audit entry, and a public reason. */
export interface SubjectRejection {
  deniedBy: 'token_invalid' | 'subject_unsupported';
  check: string;
  reason: string;
  claims?: AccessTokenClaims | undefined;
}

export type SubjectOutcome = { kind: 'verified'; subject: TokenSubject } | { kind: 'rejected'; rejection: SubjectRejection };

/**
 * Verifies the access token that an agent presented to the PEP, as the gateway verifies its own:
 * signature, `typ`, `iss`, audience = the resource's identifier, expiry, revocation, tenant, and
 * for a delegated token a live delegation for this resource with an active agent and person.
 * An agent's own client_credentials token (`sub` = `client_id`, no `act`) is accepted when the
 * agent is active. A DPoP-bound token is taken as it is: the PEP checks the proof of the request
 * it received, and the binding is reported in `jkt`.
 */
export async function verifySubjectToken(ctx: ServerContext, token: string, resource: ResourceWithActions): Promise<SubjectOutcome> {
  try {
    const claims = await verifyDelegatedToken(ctx, token, resource.identifier);
    const caller = await checkDelegation(ctx, claims, resource.id);
    return { kind: 'verified', subject: { claims, userId: caller.userId, agentId: caller.agentId, delegatingAgentIds: caller.delegatingAgentIds, scope: [...caller.scope], delegationId: caller.delegation.id, jkt: boundJktOf(claims) } };
  } catch (error) {
    if (!(error instanceof CallerRejected)) throw error;
    if (error.check === 'not_delegated' && error.claims !== undefined) return agentOwnToken(ctx, error.claims);
    return { kind: 'rejected', rejection: { deniedBy: 'token_invalid', check: error.check, reason: error.denial.description, claims: error.claims } };
  }
}

async function agentOwnToken(ctx: ServerContext, claims: AccessTokenClaims): Promise<SubjectOutcome> {
  if (claims.act !== undefined || claims.delegation_id !== undefined || claims.sub !== claims.client_id) {
    return {
      kind: 'rejected',
      rejection: { deniedBy: 'subject_unsupported', check: 'subject_unsupported', reason: 'Mandate evaluates only agents\' access tokens: one issued to an agent on behalf of a person, or the agent\'s own client_credentials token.', claims },
    };
  }

  const client = await findClient(ctx, claims.client_id);
  if (client === undefined || client.kind !== 'agent') {
    return { kind: 'rejected', rejection: { deniedBy: 'subject_unsupported', check: 'subject_not_agent', reason: 'The access token was not issued to an agent.', claims } };
  }
  if (client.status !== 'active') {
    return { kind: 'rejected', rejection: { deniedBy: 'token_invalid', check: 'agent_inactive', reason: 'The agent of this access token is disabled.', claims } };
  }
  return { kind: 'verified', subject: { claims, agentId: client.client_id, delegatingAgentIds: [], scope: claims.scope.split(' ').filter((scope) => scope !== ''), jkt: boundJktOf(claims) } };
}
