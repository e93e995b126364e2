import type { ServerContext } from '../context.ts';
import { isDelegationChainLive } from '../oauth/delegation.ts';
import { verifyAccessToken, type AccessTokenClaims } from '../oauth/access-token.ts';
import { AccessDenied, dpopChallenge, InvalidDpopProof, InvalidToken, MissingToken, OAuthError, UseDpopNonce } from '../oauth/errors.ts';
import { verifyDpopProof } from '../oauth/dpop/proof.ts';
import { DPOP_SIGNING_ALGORITHMS } from '../oauth/dpop/algorithms.ts';
import type { DelegationTable } from '../store/schema.ts';
import { nowSeconds } from '../store/ids.ts';

/** A verified delegated token: a person (`sub`) on whose behalf an agent (`act.sub`) calls. */
export interface DelegatedCaller {
  claims: AccessTokenClaims;
  userId: string;
  agentId: string;
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

/** An access token and the authorization scheme it was presented with. */
export interface PresentedToken {
  scheme: 'Bearer' | 'DPoP';
  token: string;
}

/**
 * Returns the token of an `Authorization: Bearer` (RFC 6750 §2.1) or `Authorization: DPoP`
 * (RFC 9449 §7.1) field, or undefined when the field is absent or uses another scheme.
 */
export function presentedToken(authorization: string | undefined): PresentedToken | undefined {
  if (authorization === undefined) return undefined;
  const match = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  return { scheme: match[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', token: match[2] };
}

/** The parts of a gateway request that a DPoP proof covers. */
export interface ProofContext {
  /** The DPoP header field as Node parsed it. */
  proof: string | string[] | undefined;
  method: string;
  /** The request URL as the client addressed it. */
  url: string;
}

/**
 * Enforces DPoP sender-constraining (RFC 9449 §7): a token with `cnf.jkt` is accepted only
 * under the `DPoP` scheme with a valid proof by that key for this request, and the `DPoP`
 * scheme only with such a token.
 */
export async function verifySenderConstraint(ctx: ServerContext, presented: PresentedToken, claims: AccessTokenClaims, request: ProofContext): Promise<void> {
  const boundJkt = typeof claims.cnf === 'object' && claims.cnf !== null && typeof claims.cnf.jkt === 'string' ? claims.cnf.jkt : undefined;

  // RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is rejected.
  if (boundJkt !== undefined && presented.scheme === 'Bearer') {
    const description = 'The access token is bound to a DPoP key; send it as "Authorization: DPoP <token>" with a DPoP proof.';
    throw new CallerRejected(new InvalidToken(description, { headers: { 'www-authenticate': dpopChallenge('invalid_token', description) } }), 'dpop_token_as_bearer', claims);
  }
  if (presented.scheme === 'Bearer') return;

  if (boundJkt === undefined) {
    const description = 'The access token is not bound to a DPoP key; send it as "Authorization: Bearer <token>".';
    throw new CallerRejected(new InvalidToken(description, { headers: { 'www-authenticate': dpopChallenge('invalid_token', description) } }), 'dpop_token_unbound', claims);
  }

  // RFC 9449 §7.1: the proof passes every check of §4.3, including `ath` and `cnf.jkt`.
  try {
    await verifyDpopProof(ctx, { header: request.proof, method: request.method, url: request.url, site: 'resource', accessToken: presented.token, boundJkt });
  } catch (error) {
    if (error instanceof InvalidDpopProof || error instanceof UseDpopNonce) throw new CallerRejected(error, error.error === 'use_dpop_nonce' ? 'dpop_nonce' : 'dpop_proof', claims);
    throw error;
  }
}

/**
 * Replaces the `Bearer` challenge of a denial with a `DPoP` challenge (RFC 9449 §7.1), for
 * requests that used the DPoP scheme.
 */
export function useDpopChallenge(error: OAuthError): void {
  const challenge = error.headers['www-authenticate'];
  if (challenge === undefined || !challenge.startsWith('Bearer ')) return;
  error.headers['www-authenticate'] = `DPoP algs="${DPOP_SIGNING_ALGORITHMS.join(' ')}", ${challenge.slice('Bearer '.length)}`;
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
 * Any failure is `invalid_token` (RFC 6750 §3.1: the token was revoked). Records the use.
 */
export async function checkDelegation(ctx: ServerContext, claims: AccessTokenClaims & { act: { sub: string }; delegation_id: string }, resourceId: string): Promise<DelegatedCaller> {
  const revoked = (check: string) => new CallerRejected(new InvalidToken('The delegation behind this access token was revoked.', { detail: `delegation check failed: ${check}` }), check, claims);

  const delegation = await ctx.db.selectFrom('delegations').selectAll().where('tenant_id', '=', ctx.tenantId).where('id', '=', claims.delegation_id).executeTakeFirst();
  if (delegation === undefined) throw revoked('delegation_not_found');
  if (delegation.user_id !== claims.sub || delegation.client_id !== claims.act.sub || delegation.resource_id !== resourceId) throw revoked('delegation_mismatch');
  if (delegation.revoked_at !== null) throw revoked('delegation_revoked');
  if (!(await isDelegationChainLive(ctx, delegation))) throw revoked('parent_delegation_revoked');

  const agent = await ctx.db.selectFrom('clients').select(['status', 'kind']).where('tenant_id', '=', ctx.tenantId).where('client_id', '=', claims.act.sub).executeTakeFirst();
  if (agent === undefined || agent.status !== 'active' || agent.kind !== 'agent') throw revoked('agent_inactive');

  const user = await ctx.db.selectFrom('users').select('status').where('tenant_id', '=', ctx.tenantId).where('id', '=', claims.sub).executeTakeFirst();
  if (user === undefined || user.status !== 'active') throw revoked('user_inactive');

  await ctx.db.updateTable('delegations').set({ last_used_at: nowSeconds() }).where('id', '=', delegation.id).execute();

  const delegated = new Set(delegation.scope.split(' ').filter((scope) => scope !== ''));
  const scope = new Set(claims.scope.split(' ').filter((scope) => delegated.has(scope)));
  return { claims, userId: claims.sub, agentId: claims.act.sub, delegation, scope };
}
