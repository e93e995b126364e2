import type { ServerContext } from '../context.ts';
import { issueAccessToken, type IssueAccessToken } from './access-token.ts';
import { tokenDigest } from '../audit/log.ts';

/** RFC 6749 §5.1 successful token response, with RFC 8693 §2.2.1 `issued_token_type` when exchanging. */
export interface TokenResponse {
  access_token: string;
  /** RFC 9449 §5: `DPoP` when the access token is bound to a DPoP key. */
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  scope: string;
  refresh_token?: string;
  id_token?: string;
  issued_token_type?: string;
}

export interface AccessTokenGrant extends IssueAccessToken {
  /** The grant type, for the audit log. */
  grantType: string;
  /** The person the token acts for, when there is one. */
  userId?: string | undefined;
  reasons: Record<string, unknown>;
}

/** Signs the access token and appends `token.issued` to the audit log; a failed append issues nothing. */
export async function issueAuditedAccessToken(ctx: ServerContext, grant: AccessTokenGrant): Promise<{ token: string; expiresIn: number }> {
  const { token, claims } = await issueAccessToken(ctx, grant);
  await ctx.audit({
    event: 'token.issued',
    user: grant.userId,
    agent: grant.actor ?? (grant.userId === undefined ? grant.clientId : undefined),
    actor: grant.clientId,
    target: { audience: claims.aud, scope: claims.scope },
    outcome: { decision: 'allowed', jti: claims.jti, token: tokenDigest(token), expires_at: claims.exp },
    reason: { grant_type: grant.grantType, delegation_id: grant.delegationId, ...grant.reasons },
  });
  return { token, expiresIn: grant.lifetimeSeconds };
}
