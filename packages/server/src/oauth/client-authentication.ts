import type { FastifyRequest } from 'fastify';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import type { ServerContext } from '../context.ts';
import { findClient, secretMatches, type Client } from '../agents/clients.ts';
import { MetadataDocumentError } from '../registration/metadata-document.ts';
import { resolveClient } from '../registration/resolve-client.ts';
import { nowSeconds } from '../store/ids.ts';
import { singleParam, type FormBody } from '../http/form.ts';
import { InvalidClient, InvalidRequest } from './errors.ts';

/** RFC 7523 §2.2 */
export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Client assertions may live at most this long, which bounds the `jti` replay table. */
const MAX_ASSERTION_LIFETIME_SECONDS = 300;
const CLOCK_TOLERANCE_SECONDS = 30;

const UNKNOWN_OR_INVALID = 'Client authentication failed.';

const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

export interface AuthenticationOptions {
  /**
   * Accepts a public client (RFC 6749 §2.1, `token_endpoint_auth_method` none) that only names
   * itself with `client_id`. The token, PAR and revocation endpoints allow it; introspection does not.
   */
  allowPublic?: boolean;
}

/**
 * Authenticates the client at the token endpoint with `client_secret_basic` (RFC 6749 §2.3.1)
 * or `private_key_jwt` (RFC 7523 §3), or identifies a public client by its `client_id` when
 * allowed. Exactly one method may be used, and it must be the one registered for the client.
 * Every failure is `invalid_client` with one public message.
 */
export async function authenticateClient(ctx: ServerContext, request: FastifyRequest, form: FormBody, options: AuthenticationOptions = {}): Promise<Client> {
  const basic = parseBasic(request.headers.authorization);
  const assertionType = singleParam(form, 'client_assertion_type');
  const assertion = singleParam(form, 'client_assertion');

  // RFC 6749 §2.3: a client must not use more than one authentication method per request.
  if (basic !== undefined && (assertion !== undefined || assertionType !== undefined)) {
    throw new InvalidRequest('Use one client authentication method, not both HTTP Basic and a client assertion.');
  }
  if (singleParam(form, 'client_secret') !== undefined) {
    throw new InvalidClient('Send the client secret with HTTP Basic (client_secret_basic), not in the body.');
  }

  if (basic !== undefined) return authenticateWithSecret(ctx, basic.clientId, basic.secret);
  if (assertion !== undefined || assertionType !== undefined) {
    if (assertionType !== JWT_BEARER_ASSERTION) throw new InvalidClient(`client_assertion_type must be ${JWT_BEARER_ASSERTION}.`);
    if (assertion === undefined) throw new InvalidClient('client_assertion is missing.');
    return authenticateWithAssertion(ctx, assertion, singleParam(form, 'client_id'));
  }
  const clientId = singleParam(form, 'client_id');
  if (options.allowPublic === true && clientId !== undefined) return identifyPublicClient(ctx, clientId);
  throw new InvalidClient('The client did not authenticate. Use HTTP Basic or private_key_jwt.');
}

/**
 * Identifies a public client by its client_id. It proves nothing at the token endpoint; PKCE and the registered redirect URI
 * protect its codes (RFC 9700 §2.1.1), and rotation its refresh tokens (OAuth 2.1 §4.3.1).
 * A confidential client may never fall back to this.
 */
async function identifyPublicClient(ctx: ServerContext, clientId: string): Promise<Client> {
  const client = await lookUpClient(ctx, clientId);
  if (client === undefined || client.status !== 'active' || client.token_endpoint_auth_method !== 'none') {
    throw new InvalidClient(UNKNOWN_OR_INVALID, { detail: `no active public client ${clientId.slice(0, 200)}` });
  }
  return client;
}

/** Finds the client, fetching the metadata document of a URL client_id; a refused document is invalid_client. */
async function lookUpClient(ctx: ServerContext, clientId: string): Promise<Client | undefined> {
  if (clientId.length > 2000 || CONTROL_CHARACTER.test(clientId)) return undefined;
  try {
    return await resolveClient(ctx, clientId);
  } catch (error) {
    if (error instanceof MetadataDocumentError) throw new InvalidClient(error.message, { cause: error });
    throw error;
  }
}

async function authenticateWithSecret(ctx: ServerContext, clientId: string, secret: string): Promise<Client> {
  const client = await findClient(ctx, clientId);
  if (client === undefined || client.status !== 'active' || client.token_endpoint_auth_method !== 'client_secret_basic' || !secretMatches(client, secret)) {
    throw new InvalidClient(UNKNOWN_OR_INVALID, { detail: `client_secret_basic failed for ${clientId}` });
  }
  return client;
}

async function authenticateWithAssertion(ctx: ServerContext, assertion: string, clientIdParam: string | undefined): Promise<Client> {
  const claimedId = unverifiedSubject(assertion);
  if (claimedId === undefined || (clientIdParam !== undefined && clientIdParam !== claimedId)) {
    throw new InvalidClient(UNKNOWN_OR_INVALID, { detail: 'client assertion has no usable sub, or it differs from client_id' });
  }

  const client = await lookUpClient(ctx, claimedId);
  if (client === undefined || client.status !== 'active' || client.token_endpoint_auth_method !== 'private_key_jwt' || client.jwks === null) {
    throw new InvalidClient(UNKNOWN_OR_INVALID, { detail: `no active private_key_jwt client ${claimedId}` });
  }

  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, createLocalJWKSet(acceptBothEdDsaNames(JSON.parse(client.jwks) as JSONWebKeySet)), {
      issuer: client.client_id,
      subject: client.client_id,
      // RFC 7523 §3 item 3: the audience identifies the authorization server; its issuer or token endpoint.
      audience: [ctx.config.issuer, `${ctx.config.issuer}/token`],
      algorithms: ['EdDSA', 'Ed25519', 'ES256', 'RS256', 'PS256'],
      requiredClaims: ['exp', 'jti', 'iat'],
      maxTokenAge: MAX_ASSERTION_LIFETIME_SECONDS,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    }));
  } catch (error) {
    throw new InvalidClient(UNKNOWN_OR_INVALID, { detail: `client assertion rejected: ${(error as Error).message}`, cause: error });
  }

  const exp = payload.exp as number;
  if (exp - nowSeconds() > MAX_ASSERTION_LIFETIME_SECONDS + CLOCK_TOLERANCE_SECONDS) {
    throw new InvalidClient(UNKNOWN_OR_INVALID, { detail: 'client assertion lives longer than allowed' });
  }
  await rememberAssertionId(ctx, client.client_id, payload.jti as string, exp);
  return client;
}

/** RFC 7523 §3 item 7: a `jti` may be used once; the primary key rejects a second insert. */
async function rememberAssertionId(ctx: ServerContext, clientId: string, jti: string, exp: number): Promise<void> {
  const now = nowSeconds();
  await ctx.db.deleteFrom('client_assertion_ids').where('expires_at', '<', now - CLOCK_TOLERANCE_SECONDS).execute();
  try {
    await ctx.db.insertInto('client_assertion_ids').values({ client_id: clientId, jti, expires_at: exp }).execute();
  } catch (error) {
    throw new InvalidClient(UNKNOWN_OR_INVALID, { detail: 'client assertion jti was used before', cause: error });
  }
}

/**
 * RFC 9864 names Ed25519 signatures `Ed25519` where older clients use `EdDSA`; jose only picks a
 * key whose `alg` equals the header's. For Ed25519 keys the key type already fixes the
 * algorithm, so their `alg` is dropped and either name verifies.
 */
function acceptBothEdDsaNames(jwks: JSONWebKeySet): JSONWebKeySet {
  return {
    keys: jwks.keys.map((key) => {
      if (key.kty !== 'OKP' || key.crv !== 'Ed25519') return key;
      const { alg: _alg, ...rest } = key;
      return rest;
    }),
  };
}

function unverifiedSubject(assertion: string): string | undefined {
  const payload = assertion.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof claims.sub === 'string' && claims.sub.length <= 2000 && !CONTROL_CHARACTER.test(claims.sub) ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}

/** RFC 6749 §2.3.1: the id and secret are form-urlencoded before Base64. */
function parseBasic(header: string | undefined): { clientId: string; secret: string } | undefined {
  if (header === undefined) return undefined;
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (match?.[1] === undefined) throw new InvalidClient('The Authorization header is not valid HTTP Basic.');

  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new InvalidClient('The Authorization header is not valid HTTP Basic.');
  let clientId: string;
  let secret: string;
  try {
    clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
  } catch {
    throw new InvalidClient('The Authorization header is not valid HTTP Basic.');
  }
  // No client_id contains control characters, and PostgreSQL cannot even compare one with NUL.
  if (clientId === '' || CONTROL_CHARACTER.test(clientId)) throw new InvalidClient('The Authorization header is not valid HTTP Basic.');
  return { clientId, secret };
}
