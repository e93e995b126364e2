import { randomUUID } from 'node:crypto';

import { SignJWT } from 'jose';

import type { ClientAssertionAlgorithm, ClientAssertionKey } from './signing-algorithm.ts';

/** Client credentials for the token endpoint, tagged with the RFC 8414 token_endpoint_auth_method name. */
export type ClientAuthentication =
  | { method: 'client_secret_basic'; clientId: string; clientSecret: string }
  | {
      method: 'private_key_jwt';
      clientId: string;
      privateKey: ClientAssertionKey;
      algorithm: ClientAssertionAlgorithm;
      keyId: string | undefined;
    };

/** Lifetime of a client assertion. Mandate rejects assertions that expire more than 5 minutes ahead. */
const CLIENT_ASSERTION_LIFETIME_SECONDS = 60;

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * Adds the client credentials to a token request: an Authorization header for
 * client_secret_basic, or client_assertion parameters for private_key_jwt.
 * `audience` is the `aud` of the assertion, which Mandate requires to be its
 * issuer URL.
 */
export async function authenticateTokenRequest(
  authentication: ClientAuthentication,
  audience: string,
  headers: Headers,
  parameters: URLSearchParams,
): Promise<void> {
  if (authentication.method === 'client_secret_basic') {
    // RFC 6749 §2.3.1: form-urlencode the id and the secret before Base64,
    // so a ':' in either survives the split on the server.
    const userPass = `${formUrlEncode(authentication.clientId)}:${formUrlEncode(authentication.clientSecret)}`;
    headers.set('authorization', `Basic ${Buffer.from(userPass).toString('base64')}`);
    return;
  }

  parameters.set('client_id', authentication.clientId);
  parameters.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
  parameters.set('client_assertion', await signClientAssertion(authentication, audience));
}

/**
 * Signs an RFC 7523 §3 client assertion with iss = sub = client_id, a fresh
 * random jti so the server can reject replays, and a short expiry.
 */
async function signClientAssertion(
  authentication: Extract<ClientAuthentication, { method: 'private_key_jwt' }>,
  audience: string,
): Promise<string> {
  const header: { alg: string; kid?: string } = { alg: authentication.algorithm };
  if (authentication.keyId !== undefined) {
    header.kid = authentication.keyId;
  }
  return new SignJWT({})
    .setProtectedHeader(header)
    .setIssuer(authentication.clientId)
    .setSubject(authentication.clientId)
    .setAudience(audience)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime(`${CLIENT_ASSERTION_LIFETIME_SECONDS}s`)
    .sign(authentication.privateKey);
}

/** Encodes a value with the application/x-www-form-urlencoded serializer (space becomes '+'). */
function formUrlEncode(value: string): string {
  return new URLSearchParams({ value }).toString().slice('value='.length);
}
