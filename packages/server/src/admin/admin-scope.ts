/**
 * The scope an access token must carry to call the admin API under `/admin/v1/`.
 * Only clients of kind `admin` may obtain it (client_credentials at `/token`).
 */
export const ADMIN_SCOPE = 'mandate:admin';

/** Returns the audience (RFC 8707 resource identifier) of admin API access tokens. */
export function adminAudience(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/admin`;
}
