import { SignJWT } from 'jose';
import type { ServerContext } from '../context.ts';
import type { User } from '../identity/users.ts';
import { nowSeconds } from '../store/ids.ts';

/** ID tokens are for the client that signed the person in; they live as long as a sign-in response needs. */
const ID_TOKEN_LIFETIME_SECONDS = 300;

/**
 * Signs an OpenID Connect ID token (OIDC Core §2) with the RS256 ID token key. Its `typ` is
 * plain `JWT` and its audience the client, so no resource server accepts it as an access token.
 */
export async function issueIdToken(ctx: ServerContext, input: { user: User; clientId: string; nonce: string | null; authTime: number }): Promise<string> {
  const iat = nowSeconds();
  const key = ctx.keys.idToken;
  return new SignJWT({
    iss: ctx.config.issuer,
    sub: input.user.id,
    aud: input.clientId,
    iat,
    exp: iat + ID_TOKEN_LIFETIME_SECONDS,
    auth_time: input.authTime,
    name: input.user.display_name,
    preferred_username: input.user.username,
    ...(input.user.email === null ? {} : { email: input.user.email }),
    ...(input.nonce === null ? {} : { nonce: input.nonce }),
  })
    .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid })
    .sign(key.privateKey);
}
