import type { ServerContext } from '../context.ts';
import { activeAgentIds } from '../agents/clients.ts';
import { readParentDelegations, type ParentDelegation } from '../oauth/delegation.ts';
import { readActorChain } from '../oauth/grants/token-exchange/actor-chain.ts';
import { verifyAccessToken, type AccessTokenClaims } from '../oauth/access-token.ts';
import { AccessDenied, InvalidDpopProof, InvalidToken, MissingToken, UseDpopNonce } from '../oauth/errors.ts';
import { verifyDpopResourceRequest, type PresentedToken, type ProofContext } from '../oauth/dpop/resource-request.ts';
import type { DelegationTable } from '../store/schema.ts';
import { nowSeconds } from '../store/ids.ts';

export { presentedToken, useDpopChallenge, type PresentedToken, type ProofContext } from '../oauth/dpop/resource-request.ts';

/** A verified delegated token: a person (`sub`) on whose behalf an agent (`act.sub`) calls. */
export interface DelegatedCaller {
  claims: AccessTokenClaims;
  userId: string;
  agentId: string;
  /**
   * The agents that handed the token on to `agentId` by token exchange, the nearest first
   * (the inner levels of `act`). Each of them must still be allowed the action too.
   */
  delegatingAgentIds: string[];
  delegation: DelegationTable;
  /** The token scope narrowed to the delegation's current scope. */
  scope: Set<string>;
}

/** Rejection of a caller, with the failed check recorded in the audit entry. */
export class CallerRejected extends Error {
  readonly denial: InvalidToken | AccessDenied | MissingToken | InvalidDpopProof | UseDpopNonce;
  readonly check: string;
  readonly claims: AccessTokenClaims | undefined;

  constructor(denial: InvalidToken | AccessDenied | MissingToken | InvalidDpopProof | UseDpopNonce, check: string, claims?: AccessTokenClaims) {
    super(denial.message);
    this.denial = denial;
    this.check = check;
    this.claims = claims;
  }
}

/**
 * Returns the token of an `Authorization: Bearer` field (RFC 6750 §2.1), or undefined when
 * the field is absent or uses another scheme.
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization);
  return match?.[1];
}

/**
 * Enforces DPoP sender-constraining (RFC 9449 §7) with the check that userinfo shares, and
 * records which check failed for the audit entry.
 */
export async function verifySenderConstraint(ctx: ServerContext, presented: PresentedToken, claims: AccessTokenClaims, request: ProofContext): Promise<void> {
  try {
    await verifyDpopResourceRequest(ctx, presented, claims, request);
  } catch (error) {
    if (error instanceof UseDpopNonce) throw new CallerRejected(error, 'dpop_nonce', claims);
    if (error instanceof InvalidDpopProof) throw new CallerRejected(error, 'dpop_proof', claims);
    if (error instanceof InvalidToken) throw new CallerRejected(error, presented.scheme === 'Bearer' ? 'dpop_token_as_bearer' : 'dpop_token_unbound', claims);
    throw error;
  }
}

/** Verifies the token for the resource and requires it to be delegated: `act.sub` and `delegation_id`. */
export async function verifyDelegatedToken(ctx: ServerContext, token: string, audience: string): Promise<AccessTokenClaims & { act: { sub: string }; delegation_id: string }> {
  let claims: AccessTokenClaims;
  try {
    claims = await verifyAccessToken(ctx, token, audience);
  } catch (error) {
    if (error instanceof InvalidToken) throw new CallerRejected(error, 'token_verification');
    throw new CallerRejected(new InvalidToken('The access token is invalid.', { detail: `access token verification failed: ${(error as Error).message}` }), 'token_verification');
  }

  if (claims.tenant !== ctx.tenantId) throw new CallerRejected(new InvalidToken('The access token is invalid.', { detail: `token tenant ${String(claims.tenant)} is not ${ctx.tenantId}` }), 'token_tenant', claims);

  const actor = typeof claims.act === 'object' && claims.act !== null ? claims.act.sub : undefined;
  if (typeof actor !== 'string' || typeof claims.delegation_id !== 'string') {
    throw new CallerRejected(new AccessDenied('The gateway accepts only tokens issued to an agent on behalf of a person (with "act" and "delegation_id" claims).'), 'not_delegated', claims);
  }
  return claims as AccessTokenClaims & { act: { sub: string }; delegation_id: string };
}

/**
 * Checks that the token's delegation is still valid: it exists, it is this person's grant to
 * this agent for this resource, it is not revoked, and the agent and the person are active.
 * For a token handed on by token exchange, every parent delegation must be live and match the
 * token's nested `act` claims, and every agent of the chain must be active. Any failure is
 * `invalid_token` (RFC 6750 §3.1: the token was revoked). Records the use.
 */
export async function checkDelegation(ctx: ServerContext, claims: AccessTokenClaims & { act: { sub: string }; delegation_id: string }, resourceId: string): Promise<DelegatedCaller> {
  const revoked = (check: string) => new CallerRejected(new InvalidToken('The delegation behind this access token was revoked.', { detail: `delegation check failed: ${check}` }), check, claims);

  const delegation = await ctx.db.selectFrom('delegations').selectAll().where('tenant_id', '=', ctx.tenantId).where('id', '=', claims.delegation_id).executeTakeFirst();
  if (delegation === undefined) throw revoked('delegation_not_found');
  if (delegation.user_id !== claims.sub || delegation.client_id !== claims.act.sub || delegation.resource_id !== resourceId) throw revoked('delegation_mismatch');
  if (delegation.revoked_at !== null) throw revoked('delegation_revoked');
  const parents = await readParentDelegations(ctx, delegation);
  if (parents === undefined) throw revoked('parent_delegation_revoked');
  const delegatingAgentIds = parents.map((parent) => parent.client_id);
  if (!chainMatches(claims, parents, resourceId)) throw revoked('actor_chain_mismatch');

  const active = await activeAgentIds(ctx, [claims.act.sub, ...delegatingAgentIds]);
  if (!active.has(claims.act.sub)) throw revoked('agent_inactive');
  if (!delegatingAgentIds.every((id) => active.has(id))) throw revoked('delegating_agent_inactive');

  const user = await ctx.db.selectFrom('users').select('status').where('tenant_id', '=', ctx.tenantId).where('id', '=', claims.sub).executeTakeFirst();
  if (user === undefined || user.status !== 'active') throw revoked('user_inactive');

  await ctx.db.updateTable('delegations').set({ last_used_at: nowSeconds() }).where('id', '=', delegation.id).execute();

  const delegated = new Set(delegation.scope.split(' ').filter((scope) => scope !== ''));
  const scope = new Set(claims.scope.split(' ').filter((scope) => delegated.has(scope)));
  return { claims, userId: claims.sub, agentId: claims.act.sub, delegatingAgentIds, delegation, scope };
}

/**
 * Checks that the parent delegations are the ones the token's nested `act` claims name, in the
 * same order, for the same person and resource. Token exchange records them together, so a
 * difference means a damaged chain, and the token is refused.
 */
function chainMatches(claims: AccessTokenClaims, parents: readonly ParentDelegation[], resourceId: string): boolean {
  let actors: string[];
  try {
    actors = readActorChain(claims.act, 'access token');
  } catch {
    return false;
  }
  if (actors.length !== parents.length + 1) return false;
  return parents.every((parent, index) => parent.client_id === actors[index + 1] && parent.user_id === claims.sub && parent.resource_id === resourceId);
}
