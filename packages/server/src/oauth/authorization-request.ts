import type { ServerContext } from '../context.ts';
import { redirectUrisOf, type Client } from '../agents/clients.ts';
import { MetadataDocumentError } from '../registration/metadata-document.ts';
import { resolveClient } from '../registration/resolve-client.ts';
import type { ResourceWithActions } from '../resources/registry.ts';
import { repeatedParam, singleParam } from '../http/form.ts';
import { OAuthError } from './errors.ts';
import { isValidChallenge } from './pkce.ts';
import { redirectUriMatches } from './redirect-uri.ts';
import { resolveResource } from './resource-indicator.ts';
import { OIDC_SCOPES, parseScope } from './scope.ts';

const DPOP_JKT = /^[A-Za-z0-9_-]{43}$/;

/** Parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707 §2) after validation. */
export interface AuthorizationRequest {
  client: Client;
  redirectUri: string;
  state: string | undefined;
  codeChallenge: string;
  resource: ResourceWithActions;
  /** Requested resource actions; undefined requests every action the resource has. */
  actions: string[] | undefined;
  openid: boolean;
  nonce: string | undefined;
  /** RFC 9449 §10: the thumbprint of the DPoP key that must redeem the code. */
  dpopJkt: string | undefined;
}

/**
 * An error the person must see on a Mandate page because the redirect URI is not verified
 * (RFC 9700 §4.11.2: never redirect to an unverified URI).
 */
export class AuthorizationPageError extends Error {
  override name = 'AuthorizationPageError';
}

/** An error to return to the client at its verified redirect URI. */
export class AuthorizationRedirectError extends Error {
  override name = 'AuthorizationRedirectError';
  constructor(
    readonly redirectUri: string,
    readonly state: string | undefined,
    readonly error: OAuthError,
  ) {
    super(error.message);
  }
}

/** Validates the client and redirect URI first, so that every later error can be redirected safely. */
export async function validateAuthorizationRequest(ctx: ServerContext, params: Record<string, unknown>): Promise<AuthorizationRequest> {
  const { client, redirectUri } = await verifyClientAndRedirect(ctx, params);
  const state = safeSingle(params, 'state', redirectUri, undefined);
  const fail = (error: string, description: string) => new AuthorizationRedirectError(redirectUri, state, new OAuthError(error, 400, description));

  for (const name of Object.keys(params)) {
    if (name !== 'resource' && Array.isArray(params[name])) throw fail('invalid_request', `The ${name} parameter must appear only once.`);
  }

  if (safeSingle(params, 'response_type', redirectUri, state) !== 'code') throw fail('unsupported_response_type', 'Only response_type=code is supported.');
  if (safeSingle(params, 'response_mode', redirectUri, state) !== undefined && params.response_mode !== 'query') throw fail('invalid_request', 'Only response_mode=query is supported.');

  // RFC 9700 §2.1.1: PKCE is required, and S256 is the only method (no downgrade to plain).
  const codeChallenge = safeSingle(params, 'code_challenge', redirectUri, state);
  const method = safeSingle(params, 'code_challenge_method', redirectUri, state);
  if (codeChallenge === undefined) throw fail('invalid_request', 'code_challenge is required (PKCE with S256).');
  if (method !== 'S256') throw fail('invalid_request', 'code_challenge_method must be S256.');
  if (!isValidChallenge(codeChallenge)) throw fail('invalid_request', 'code_challenge must be a base64url SHA-256 digest (43 characters).');

  let scopes: string[] | undefined;
  let resource: ResourceWithActions;
  try {
    scopes = parseScope(safeSingle(params, 'scope', redirectUri, state));
    resource = await resolveResource(ctx, repeatedParam(params, 'resource'));
  } catch (error) {
    if (error instanceof OAuthError) throw new AuthorizationRedirectError(redirectUri, state, error);
    throw error;
  }

  // RFC 9449 §10: dpop_jkt is an RFC 7638 SHA-256 thumbprint, 43 base64url characters.
  const dpopJkt = safeSingle(params, 'dpop_jkt', redirectUri, state);
  if (dpopJkt !== undefined && !DPOP_JKT.test(dpopJkt)) throw fail('invalid_request', 'dpop_jkt must be the base64url SHA-256 JWK thumbprint (43 characters) of the DPoP key.');

  const actions = scopes?.filter((scope) => !OIDC_SCOPES.has(scope));
  return {
    client,
    redirectUri,
    state,
    codeChallenge,
    resource,
    actions: actions === undefined || actions.length === 0 ? undefined : actions,
    openid: scopes?.includes('openid') === true,
    nonce: safeSingle(params, 'nonce', redirectUri, state),
    dpopJkt,
  };
}

async function verifyClientAndRedirect(ctx: ServerContext, params: Record<string, unknown>): Promise<{ client: Client; redirectUri: string }> {
  const clientId = params.client_id;
  const redirectUri = params.redirect_uri;
  if (typeof clientId !== 'string' || clientId === '') throw new AuthorizationPageError('The request has no valid client_id.');
  if (typeof redirectUri !== 'string' || redirectUri === '') throw new AuthorizationPageError('The request has no valid redirect_uri.');

  const client = await clientNamed(ctx, clientId);
  if (client === undefined || client.status !== 'active' || client.kind === 'admin') throw new AuthorizationPageError('The client is unknown or disabled.');
  // RFC 9700 §4.1.3: exact string matching against the registered redirect URIs (loopback ports excepted).
  if (!redirectUrisOf(client).some((registered) => redirectUriMatches(registered, redirectUri))) throw new AuthorizationPageError('The redirect_uri is not registered for this client.');
  // Shown here, never redirected: a client that registered itself chose its own redirect URI, and
  // Mandate must not become an open redirector for it (RFC 9700 §4.11.2).
  if (client.kind === 'registered') {
    throw new AuthorizationPageError('This client registered itself and an administrator has not yet made it an agent. Ask an administrator to review it.');
  }
  return { client, redirectUri };
}

async function clientNamed(ctx: ServerContext, clientId: string): Promise<Client | undefined> {
  if (clientId.length > 2000) return undefined;
  try {
    return await resolveClient(ctx, clientId);
  } catch (error) {
    if (error instanceof MetadataDocumentError) throw new AuthorizationPageError(error.message, { cause: error });
    throw error;
  }
}

function safeSingle(params: Record<string, unknown>, name: string, redirectUri: string, state: string | undefined): string | undefined {
  try {
    return singleParam(params, name);
  } catch (error) {
    throw new AuthorizationRedirectError(redirectUri, name === 'state' ? undefined : state, error as OAuthError);
  }
}

/** Builds the redirect back to the client with RFC 9207 `iss`. */
export function redirectWith(redirectUri: string, params: Record<string, string | undefined>, issuer: string): string {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
  url.searchParams.set('iss', issuer);
  return url.toString();
}
