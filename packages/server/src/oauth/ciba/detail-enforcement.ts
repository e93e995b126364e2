import type { ServerContext } from '../../context.ts';
import type { AccessTokenClaims } from '../access-token.ts';
import { AccessDenied } from '../errors.ts';
import { argumentsMatch, readAuthorizationDetails } from './authorization-details.ts';
import { useAdvanceApproval } from './requests.ts';

/** A gateway call as the authorization details judge it. */
export interface DetailedCall {
  /** Resource identifier: the token's audience. */
  resource: string;
  action: string;
  body: Buffer;
  contentType: string | undefined;
  /** Whether the decision for this call needs the person's approval. */
  approvalRequired: boolean;
}

/**
 * The effect of the token's authorization details on a call: nothing (`none`, the gateway decides
 * as for any token), the person's advance approval for it (`approved`, with the CIBA request id
 * that the audit entry names), or a refusal.
 */
export type DetailOutcome = { kind: 'none' } | { kind: 'approved'; approvalId: string } | { kind: 'refused'; error: AccessDenied; reason: string };

/**
 * Enforces the RFC 9396 `authorization_details` of an access token at the gateway. A call of an
 * action that a `mandate_action` detail names must carry the detail's arguments, when it has any,
 * as a JSON body equal in RFC 8785 canonical form. Any other call of that action is refused,
 * whatever the roles and the policy allow. Calls of other actions are left to the token's scope.
 *
 * A matching call that needs the person's approval uses the approval they gave through CIBA
 * instead of asking again, once per approval: a later call gets a new approval request as usual.
 */
export async function checkAuthorizationDetails(ctx: Pick<ServerContext, 'db' | 'tenantId'>, claims: AccessTokenClaims, call: DetailedCall): Promise<DetailOutcome> {
  if (claims.authorization_details === undefined) return { kind: 'none' };

  const details = readAuthorizationDetails(claims.authorization_details);
  if (typeof details === 'string') return { kind: 'refused', error: new AccessDenied('The access token\'s authorization_details are malformed.'), reason: details };

  const covering = details.filter((detail) => detail.resource === call.resource && detail.action === call.action);
  if (covering.length === 0) return { kind: 'none' };

  // NOTE: a detail binds the JSON body only; the path below the action's prefix and the query are not bound.
  const matched = covering.some((detail) => detail.arguments === undefined || argumentsMatch(detail.arguments, call.body, call.contentType));
  if (!matched) {
    return {
      kind: 'refused',
      error: new AccessDenied(`The call's arguments differ from those the person approved for ${call.action}; send exactly the approved JSON body, or ask for a new approval.`),
      reason: 'arguments_mismatch',
    };
  }

  if (!call.approvalRequired || typeof claims.delegation_id !== 'string') return { kind: 'none' };
  const approvalId = await useAdvanceApproval(ctx, claims.delegation_id);
  return approvalId === undefined ? { kind: 'none' } : { kind: 'approved', approvalId };
}
