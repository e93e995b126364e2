import type { ServerContext } from '../context.ts';
import { findClient, postLogoutRedirectUrisOf, type Client } from '../agents/clients.ts';
import { singleParam } from '../http/form.ts';
import { InvalidRequest } from '../oauth/errors.ts';
import { verifyIdTokenHint, type IdTokenHint } from './id-token-hint.ts';

/** A logout request whose every parameter passed validateLogoutRequest. */
export interface LogoutRequest {
  /** The verified `id_token_hint`, when the client sent one. */
  hint: IdTokenHint | undefined;
  /** The client that sent the request: the hint's audience, or else `client_id`. */
  client: Client | undefined;
  /** `logout_hint`: the username or user id of the person to sign out, as the client believes it. */
  logoutHint: string | undefined;
  /** The registered `post_logout_redirect_uri` with `state` added; undefined when there is none. */
  postLogoutRedirect: string | undefined;
}

type ServerParts = Pick<ServerContext, 'config' | 'keys' | 'db' | 'tenantId'>;

/**
 * Validates the parameters of OpenID Connect RP-Initiated Logout 1.0 §2. Every failure is an
 * InvalidRequest, which the logout endpoint shows on an error page. It never redirects then
 * (§4: the OP must not redirect after an error), and nothing is signed out.
 */
export async function validateLogoutRequest(ctx: ServerParts, params: Record<string, unknown>): Promise<LogoutRequest> {
  // A repeated parameter is rejected here, as at the other endpoints.
  const idTokenHint = singleParam(params, 'id_token_hint');
  const clientIdParam = singleParam(params, 'client_id');
  const postLogoutRedirectUri = singleParam(params, 'post_logout_redirect_uri');
  const state = singleParam(params, 'state');
  const logoutHint = singleParam(params, 'logout_hint');
  // ui_locales is accepted and checked for repeats, but every page is in English.
  singleParam(params, 'ui_locales');

  const hint = idTokenHint === undefined ? undefined : await verifyIdTokenHint(ctx, idTokenHint);

  // §2: when both are present, client_id must be the client the ID token was issued to.
  if (hint !== undefined && clientIdParam !== undefined && clientIdParam !== hint.clientId) {
    throw new InvalidRequest('The client_id does not match the audience of the id_token_hint.', { detail: `client_id ${clientIdParam}, id_token_hint aud ${hint.clientId}` });
  }

  const client = await identifyClient(ctx, hint, clientIdParam);
  const postLogoutRedirect = postLogoutRedirectUri === undefined ? undefined : registeredRedirect(client, postLogoutRedirectUri, state);
  return { hint, client, logoutHint, postLogoutRedirect };
}

async function identifyClient(ctx: ServerParts, hint: IdTokenHint | undefined, clientIdParam: string | undefined): Promise<Client | undefined> {
  const clientId = hint?.clientId ?? clientIdParam;
  if (clientId === undefined) return undefined;

  const client = await findClient(ctx, clientId);
  if (client === undefined && hint === undefined) throw new InvalidRequest(`The client_id ${clientId} is not a registered client.`);
  // A verified hint for a client that no longer exists still names the person; only a redirect needs the client.
  return client;
}

/**
 * §3: the browser goes back only to a URI registered for the identified client, compared as exact
 * strings (no loopback port exception as for redirect_uri). The client must be active, and an
 * administrator must have created or reviewed it, so the endpoint is never an open redirect.
 */
function registeredRedirect(client: Client | undefined, uri: string, state: string | undefined): string {
  if (client === undefined) {
    throw new InvalidRequest('A post_logout_redirect_uri needs an id_token_hint or a client_id that names a registered client.', { detail: 'post_logout_redirect_uri without a known client' });
  }
  if (client.status !== 'active') throw new InvalidRequest(`The client ${client.client_id} is disabled, so the browser is not sent back to it.`);
  // As at /authorize: a client that registered itself chose its own URIs, and no administrator
  // has reviewed them yet, so redirecting to them would make this endpoint an open redirector
  // (RFC 9700 §4.11.2).
  if (client.kind === 'registered') {
    throw new InvalidRequest(`The client ${client.client_id} registered itself and an administrator has not yet made it an agent, so the browser is not sent back to it.`);
  }
  if (!postLogoutRedirectUrisOf(client).includes(uri)) {
    throw new InvalidRequest(`The post_logout_redirect_uri is not registered for the client ${client.client_id}.`, { detail: `unregistered post_logout_redirect_uri ${uri}` });
  }

  // §3: state goes back unchanged as a query parameter; the registered query parameters stay.
  const url = new URL(uri);
  if (state !== undefined) url.searchParams.set('state', state);
  return url.toString();
}
