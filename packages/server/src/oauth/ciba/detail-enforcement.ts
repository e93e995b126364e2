import type { ServerContext } from '../../context.ts';
import type { UpstreamPath } from '../../gateway/path.ts';
import type { AccessTokenClaims } from '../access-token.ts';
import { AccessDenied } from '../errors.ts';
import { argumentsMatch, detailTarget, readAuthorizationDetails, type MandateActionDetail } from './authorization-details.ts';
import { findUnusedAdvanceApproval, useAdvanceApproval } from './requests.ts';

/** A call as the authorization details judge it, at the gateway or in an AuthZEN evaluation. */
export interface DetailedCall {
  /** Resource identifier: the token's audience. */
  resource: string;
  action: string;
  body: Buffer;
  contentType: string | undefined;
  /** The call's HTTP method in upper case, or undefined when the caller does not know it. */
  method: string | undefined;
  /**
   * The call's path and query after `/gateway/<resource>`, from `normalizeUpstreamPath`, or
   * undefined when the caller does not know both. A detail that binds a path refuses such a call.
   */
  target: UpstreamPath | undefined;
  /** Whether the decision for this call needs the person's approval. */
  approvalRequired: boolean;
  /**
   * `use` counts the person's advance approval for this call, as the gateway does before it
   * forwards the call, and as an AuthZEN evaluation does for a resource without a gateway
   * upstream. `check` only reports whether an unused one covers it and changes nothing, for an
   * AuthZEN evaluation of a gateway resource, whose gateway call uses it.
   */
  mode: 'use' | 'check';
}

/**
 * The effect of the token's authorization details on a call: nothing (`none`, the gateway decides
 * as for any token), the person's advance approval for it (`approved`, with the CIBA request id
 * that the audit entry names), or a refusal. In `check` mode `approved` means that the approval
 * is still unused, and stays so.
 */
export type DetailOutcome = { kind: 'none' } | { kind: 'approved'; approvalId: string } | { kind: 'refused'; error: AccessDenied; reason: string };

/** The part of a call that differs from a detail of its action, as the audit entry's `detail` names it. */
type Mismatch = 'method_mismatch' | 'method_unknown' | 'path_mismatch' | 'query_mismatch' | 'path_unknown' | 'arguments_mismatch';

/**
 * Enforces the RFC 9396 `authorization_details` of an access token. A call of an action that a
 * `mandate_action` detail names must match every part of the call that the detail binds: the
 * method, the normalized path, the exact query and the JSON body in RFC 8785 canonical form. Any
 * other call of that action is refused, whatever the roles and the policy allow. Calls of other
 * actions are left to the token's scope.
 *
 * A matching call that needs the person's approval can use the approval they gave through CIBA
 * instead of asking again, once per approval: a later call gets a new approval request as usual.
 * Only `use` mode spends it.
 */
export async function checkAuthorizationDetails(ctx: Pick<ServerContext, 'db' | 'tenantId'>, claims: AccessTokenClaims, call: DetailedCall): Promise<DetailOutcome> {
  if (claims.authorization_details === undefined) return { kind: 'none' };

  const details = readAuthorizationDetails(claims.authorization_details);
  if (typeof details === 'string') return { kind: 'refused', error: new AccessDenied('The access token\'s authorization_details are malformed.'), reason: details };

  const covering = details.filter((detail) => detail.resource === call.resource && detail.action === call.action);
  const first = covering[0];
  if (first === undefined) return { kind: 'none' };

  const matched = covering.some((detail) => findMismatch(detail, call) === undefined);
  if (!matched) {
    const reason = findMismatch(first, call) ?? 'arguments_mismatch';
    return { kind: 'refused', error: new AccessDenied(mismatchDescription(reason, first, call)), reason };
  }

  if (!call.approvalRequired || typeof claims.delegation_id !== 'string') return { kind: 'none' };
  const approvalId = call.mode === 'use' ? await useAdvanceApproval(ctx, claims.delegation_id) : await findUnusedAdvanceApproval(ctx, claims.delegation_id);
  return approvalId === undefined ? { kind: 'none' } : { kind: 'approved', approvalId };
}

/** Returns the first part of the call that differs from what the detail binds, or undefined when the call matches. */
function findMismatch(detail: MandateActionDetail, call: DetailedCall): Mismatch | undefined {
  if (detail.method !== undefined) {
    if (call.method === undefined) return 'method_unknown';
    if (call.method !== detail.method) return 'method_mismatch';
  }

  const approvedTarget = detailTarget(detail);
  if (approvedTarget !== undefined) {
    if (call.target === undefined) return 'path_unknown';
    // Both sides went through normalizeUpstreamPath, so equal paths forward the same bytes upstream.
    if (call.target.encoded !== approvedTarget.encoded) return 'path_mismatch';
    if (call.target.query !== approvedTarget.query) return 'query_mismatch';
  }

  if (detail.arguments !== undefined && !argumentsMatch(detail.arguments, call.body, call.contentType)) return 'arguments_mismatch';
  return undefined;
}

function mismatchDescription(reason: Mismatch, detail: MandateActionDetail, call: DetailedCall): string {
  const request = detail.path === undefined ? undefined : `${detail.method === undefined ? '' : `${detail.method} `}${detail.path}`;
  switch (reason) {
    case 'method_mismatch':
      return `The call's method ${call.method ?? ''} differs from ${detail.method ?? ''}, the method the person approved for ${call.action}; call with ${detail.method ?? ''}, or ask for a new approval.`;
    case 'path_mismatch':
      return `The call's path differs from the path the person approved for ${call.action}; call exactly ${request ?? ''}, or ask for a new approval.`;
    case 'query_mismatch':
      return `The call's query differs from the query the person approved for ${call.action}; call exactly ${request ?? ''}, with the query character for character, or ask for a new approval.`;
    case 'method_unknown':
    case 'path_unknown':
      return `The person approved ${call.action} only for ${request === undefined ? `the method ${detail.method ?? ''}` : `the request ${request}`}, and this check does not know the call's method, path and query, so it cannot confirm the call is that request; make the call through Mandate's gateway.`;
    case 'arguments_mismatch':
      return `The call's arguments differ from those the person approved for ${call.action}; send exactly the approved JSON body, or ask for a new approval.`;
  }
}
