import type { ServerContext } from '../context.ts';
import { decideActions, type ActionDecision, type Principals } from '../policy/intersection.ts';
import type { ResourceWithActions } from '../resources/registry.ts';
import { InvalidRequest, InvalidScope } from './errors.ts';

/** OpenID Connect scopes: they shape the ID token and are not actions of any resource. */
export const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Splits a `scope` parameter (RFC 6749 §3.3) into its distinct values. */
export function parseScope(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const scopes = value.split(' ').filter((part) => part !== '');
  for (const scope of scopes) {
    if (!SCOPE_TOKEN.test(scope)) throw new InvalidScope('The scope parameter contains a character that RFC 6749 §3.3 does not allow.');
  }
  return [...new Set(scopes)];
}

export interface GrantedScope {
  scope: string[];
  decisions: ActionDecision[];
}

/**
 * Computes the scope to grant: requested ∩ the agent's roles ∩ the person's roles (and ∩ an
 * upper bound such as a delegation or a subject token). An unknown action is `invalid_scope`;
 * an empty intersection is `invalid_scope` too, so a token never carries nothing.
 */
export async function grantScope(ctx: ServerContext, principals: Principals, resource: ResourceWithActions, requested: string[] | undefined, upperBound?: Set<string>): Promise<GrantedScope> {
  if (principals.userId === undefined && principals.agentId === undefined) throw new InvalidRequest('The token would have no subject.');

  const known = new Set(resource.actions.map((action) => action.name));
  const asked = (requested ?? [...known]).filter((scope) => !OIDC_SCOPES.has(scope));
  const unknown = asked.filter((scope) => !known.has(scope));
  if (unknown.length > 0) {
    // The names are echoed back, so a long list or a huge name is cut to keep the response small.
    const shown = unknown.slice(0, 5).map((scope) => (scope.length > 100 ? `${scope.slice(0, 100)}…` : scope));
    throw new InvalidScope(`The resource ${resource.identifier} has no scope ${shown.join(', ')}${unknown.length > 5 ? ', …' : ''}.`);
  }

  const decisions = await decideActions(ctx, principals, resource.identifier, asked, upperBound);
  const scope = decisions.filter((decision) => decision.allowed).map((decision) => decision.action);
  if (scope.length === 0) {
    throw new InvalidScope('None of the requested scopes is allowed for this client and user.', { detail: JSON.stringify(decisions) });
  }
  return { scope, decisions };
}

/** Lists the roles that justified a grant and the scopes refused, for the audit log. */
export function grantReasons(decisions: ActionDecision[]): Record<string, unknown> {
  const allowed = decisions.filter((decision) => decision.allowed);
  return {
    user_roles: [...new Set(allowed.flatMap((decision) => decision.userRoles))],
    agent_roles: [...new Set(allowed.flatMap((decision) => decision.agentRoles))],
    refused: decisions.filter((decision) => !decision.allowed).map((decision) => ({ scope: decision.action, denied_by: decision.deniedBy })),
  };
}

/**
 * Puts `openid` first in an access token's scope when the authorization request contained it.
 * grantScope drops it because it is not an action of any resource. The token keeps it so that
 * userinfo (OIDC Core §5.3) accepts the tokens of OpenID Connect requests and no others.
 */
export function withOpenidScope(scope: string[], openid: boolean): string[] {
  return openid ? ['openid', ...scope.filter((value) => value !== 'openid')] : scope;
}
