import { z } from 'zod';
import type { JSONWebKeySet } from 'jose';
import { publicJwkSet } from '../agents/public-jwks.ts';
import { OAuthError } from '../oauth/errors.ts';
import { redirectUriProblem } from '../oauth/redirect-uri.ts';

/** The client metadata (RFC 7591 §2) Mandate keeps for a client that registered itself. */
export interface ClientMetadata {
  clientName: string | undefined;
  redirectUris: string[];
  authMethod: 'none' | 'client_secret_basic' | 'private_key_jwt';
  jwks: JSONWebKeySet | undefined;
  /** RFC 7591 §2: defaults to authorization_code alone, so refresh tokens need `refresh_token` listed. */
  grantTypes: string[];
  /** OpenID Connect RP-Initiated Logout §3.1: where the client may ask to land after signing out. */
  postLogoutRedirectUris: string[];
}

/** The grants a self-registered client may register: the code flow and its refresh tokens. */
export const REGISTERED_CLIENT_GRANTS = ['authorization_code', 'refresh_token'];

const redirectUri = z
  .string()
  .max(2000)
  .superRefine((value, check) => {
    const problem = redirectUriProblem(value);
    if (problem !== undefined) check.addIssue({ code: 'custom', message: problem });
  });

/** RFC 7591 §2: unknown members are ignored, so the object is loose. */
const metadataSchema = z.looseObject({
  redirect_uris: z.array(redirectUri).min(1, 'must list at least one redirect URI').max(10),
  post_logout_redirect_uris: z.array(redirectUri).max(10).optional(),
  token_endpoint_auth_method: z.enum(['none', 'client_secret_basic', 'private_key_jwt'], 'must be none, client_secret_basic or private_key_jwt').optional(),
  grant_types: z.array(z.enum(REGISTERED_CLIENT_GRANTS as [string, ...string[]], 'must be authorization_code or refresh_token')).max(2).optional(),
  response_types: z.array(z.literal('code', 'must be code')).max(1).optional(),
  client_name: z.string().trim().min(1).max(100).optional(),
  jwks: publicJwkSet.optional(),
  jwks_uri: z.undefined('is not supported; put the keys in jwks').optional(),
});

export type MetadataOrigin = 'dynamic' | 'metadata_document';

/**
 * Validates self-asserted client metadata. Dynamic registration defaults to client_secret_basic as
 * RFC 7591 §2 says; a metadata document cannot hold a shared secret, so it defaults to a public
 * client and may not choose a secret method. Errors are RFC 7591 §3.2.2 `invalid_redirect_uri`
 * or `invalid_client_metadata`, naming the member.
 */
export function parseClientMetadata(input: unknown, origin: MetadataOrigin): ClientMetadata {
  const result = metadataSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    const member = issue?.path[0] === undefined ? 'The metadata' : String(issue.path[0]);
    const where = issue?.path.length === 0 ? 'The metadata must be a JSON object' : `${issue?.path.map(String).join('.')} ${issue?.message}`;
    throw new OAuthError(member === 'redirect_uris' ? 'invalid_redirect_uri' : 'invalid_client_metadata', 400, `${where}.`);
  }

  const metadata = result.data;
  const authMethod = metadata.token_endpoint_auth_method ?? (origin === 'dynamic' ? 'client_secret_basic' : 'none');
  if (origin === 'metadata_document' && authMethod === 'client_secret_basic') {
    throw new OAuthError('invalid_client_metadata', 400, 'A client ID metadata document cannot use a shared secret; use none or private_key_jwt.');
  }
  if (authMethod === 'private_key_jwt' && metadata.jwks === undefined) {
    throw new OAuthError('invalid_client_metadata', 400, 'private_key_jwt needs the public keys in jwks.');
  }
  if (authMethod !== 'private_key_jwt' && metadata.jwks !== undefined) {
    throw new OAuthError('invalid_client_metadata', 400, 'jwks is only used with token_endpoint_auth_method private_key_jwt.');
  }
  const grantTypes = [...new Set(metadata.grant_types ?? ['authorization_code'])];
  if (!grantTypes.includes('authorization_code')) throw new OAuthError('invalid_client_metadata', 400, 'grant_types must include authorization_code.');
  return { clientName: metadata.client_name, redirectUris: metadata.redirect_uris, authMethod, jwks: metadata.jwks as JSONWebKeySet | undefined, grantTypes, postLogoutRedirectUris: metadata.post_logout_redirect_uris ?? [] };
}
