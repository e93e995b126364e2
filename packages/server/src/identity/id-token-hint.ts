import { compactVerify, createLocalJWKSet } from 'jose';
import type { ServerContext } from '../context.ts';
import { InvalidRequest } from '../oauth/errors.ts';

/** What a verified `id_token_hint` tells the logout endpoint. */
export interface IdTokenHint {
  /** The person the ID token names (`sub`). */
  userId: string;
  /** The client the ID token was issued to (`aud`). */
  clientId: string;
  /** The `auth_time` of the sign-in the ID token came from; undefined when the token has none. */
  authTime: number | undefined;
}

/** Rejects a hint that Mandate did not issue or that is not an ID token; `detail` goes to the log only. */
function invalidHint(detail: string, cause?: unknown): InvalidRequest {
  return new InvalidRequest('The id_token_hint is not an ID token issued by this server.', { detail: `id_token_hint rejected: ${detail}`, cause });
}

/**
 * Verifies an `id_token_hint` (OpenID Connect RP-Initiated Logout 1.0 §2): the signature must come
 * from Mandate's ID token key and `iss` must be this server. `exp` is not checked, because the
 * specification asks the OP to accept an expired ID token as a hint: a relying party keeps its
 * ID token for as long as its own session lasts, which is usually longer than the token's lifetime.
 */
export async function verifyIdTokenHint(ctx: Pick<ServerContext, 'config' | 'keys'>, token: string): Promise<IdTokenHint> {
  const key = ctx.keys.idToken;

  let verified: Awaited<ReturnType<typeof compactVerify>>;
  try {
    // Only the ID token key and its algorithm: an access token, signed with the EdDSA access
    // token key, fails here.
    verified = await compactVerify(token, createLocalJWKSet({ keys: [key.publicJwk] }), { algorithms: [key.alg] });
  } catch (error) {
    throw invalidHint(`signature check failed: ${(error as Error).message}`, error);
  }

  // issueIdToken sets `typ: JWT`; RFC 9068 access tokens would carry `at+jwt`.
  if (verified.protectedHeader.typ !== 'JWT') throw invalidHint(`typ is ${String(verified.protectedHeader.typ)}, expected JWT`);

  const claims = parseClaims(verified.payload);
  if (claims.iss !== ctx.config.issuer) throw invalidHint(`iss is ${String(claims.iss)}, expected ${ctx.config.issuer}`);
  if (typeof claims.sub !== 'string' || claims.sub === '') throw invalidHint('sub is missing');

  const clientId = audienceOf(claims.aud);
  if (clientId === undefined) throw invalidHint('aud is not a single client_id');

  return { userId: claims.sub, clientId, authTime: typeof claims.auth_time === 'number' ? claims.auth_time : undefined };
}

function parseClaims(payload: Uint8Array): Record<string, unknown> {
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload));
  } catch (error) {
    throw invalidHint('the payload is not JSON', error);
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw invalidHint('the payload is not a JSON object');
  return claims as Record<string, unknown>;
}

/** OIDC Core §2 allows `aud` as a string or an array; Mandate issues each ID token to one client. */
function audienceOf(aud: unknown): string | undefined {
  if (typeof aud === 'string' && aud !== '') return aud;
  if (Array.isArray(aud) && aud.length === 1 && typeof aud[0] === 'string' && aud[0] !== '') return aud[0];
  return undefined;
}
