import { SignJWT, decodeJwt, decodeProtectedHeader, exportSPKI, importJWK, type CryptoKey, type JWTPayload } from 'jose';
import * as client from 'openid-client';
import type { TestServer } from './harness.ts';
import { issueAccessToken } from '../src/oauth/access-token.ts';
import { createDelegation } from '../src/oauth/delegation.ts';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE, type World } from './gateway/world.ts';
import { basicAuthorization, createProof, type DpopKey } from './dpop/proofs.ts';
import { consentInBrowser, readResponse, type CodeFlow } from './oauth/code-flow.ts';

/** One HTTP response as the attack matrix inspects it: status, headers and the JSON body when there is one. */
export interface Outcome {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown> | undefined;
}

/** Sends a request without following redirects and reads the whole body. */
export async function call(url: string, init: RequestInit = {}): Promise<Outcome> {
  return readResponse(await fetch(url, { redirect: 'manual', ...init }));
}

/** Posts a form body (pairs, so that names can repeat) with the given extra headers. */
export function postForm(url: string, pairs: Array<[string, string]>, headers: Record<string, string> = {}): Promise<Outcome> {
  return call(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(pairs).toString() });
}

/**
 * Re-signs the claims of a genuine access token with changes: claim overrides (undefined
 * removes a claim), header overrides, and a signing key other than Mandate's when given.
 * Mandate's own access token key signs when `key` is absent.
 */
export async function forgeFrom(server: TestServer, genuine: string, change: { claims?: Record<string, unknown>; header?: Record<string, unknown>; key?: CryptoKey | Uint8Array }): Promise<string> {
  const claims: JWTPayload = { ...decodeJwt(genuine) };
  for (const [name, value] of Object.entries(change.claims ?? {})) {
    if (value === undefined) delete claims[name];
    else claims[name] = value;
  }
  const signing = server.ctx.keys.accessToken;
  const header = { ...decodeProtectedHeader(genuine), alg: signing.alg, kid: signing.kid, ...change.header } as { alg: string };
  return new SignJWT(claims).setProtectedHeader(header).sign(change.key ?? signing.privateKey);
}

/** Builds an unsigned token (`alg: none`, empty signature) from the claims of a genuine one. */
export function unsignedFrom(genuine: string): string {
  const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
  return `${header}.${genuine.split('.')[1] ?? ''}.`;
}

/**
 * The HMAC secret of the algorithm confusion attack: the bytes of Mandate's published
 * access token key in PEM form, which a verifier that trusts the header's `alg` would use.
 */
export async function publicKeyAsHmacSecret(server: TestServer): Promise<Uint8Array> {
  const signing = server.ctx.keys.accessToken;
  const publicKey = (await importJWK(signing.publicJwk, signing.alg)) as CryptoKey;
  return new TextEncoder().encode(await exportSPKI(publicKey));
}

/**
 * Obtains a DPoP-bound delegated token for the gateway world: the person's consent is recorded,
 * then the agent exchanges the person's token at `/token` with a proof by `key` (RFC 9449 §5).
 * A server that requires nonces gets a second attempt with the nonce from its first answer.
 */
export async function dpopDelegatedToken(server: TestServer, world: World, key: DpopKey): Promise<string> {
  await createDelegation(server.ctx, { userId: world.user.id, clientId: world.agentId, resourceId: world.resourceId, scope: ['read', 'echo'], source: 'consent' });
  const subject = await issueAccessToken(server.ctx, { subject: world.user.id, clientId: world.applicationId, audience: world.identifier, scope: ['read', 'echo'], lifetimeSeconds: 600 });
  const form: Array<[string, string]> = [['grant_type', TOKEN_EXCHANGE], ['subject_token', subject.token], ['subject_token_type', ACCESS_TOKEN_TYPE], ['resource', world.identifier], ['scope', 'read echo']];
  const attempt = async (nonce?: string) => postForm(`${server.issuer}/token`, form, { authorization: basicAuthorization(world.agentId, world.agentSecret), dpop: await createProof(key, { htm: 'POST', htu: `${server.issuer}/token`, ...(nonce === undefined ? {} : { nonce }) }) });

  let outcome = await attempt();
  if (outcome.status === 400 && outcome.json?.error === 'use_dpop_nonce') outcome = await attempt(outcome.headers.get('dpop-nonce') ?? undefined);
  if (outcome.status !== 200 || outcome.json?.token_type !== 'DPoP') throw new Error(`DPoP token exchange failed: ${outcome.status} ${outcome.text}`);
  return String(outcome.json.access_token);
}

/** An authorization code that a person granted in Chromium, with the PKCE verifier that redeems it. */
export interface GrantedCode {
  code: string;
  verifier: string;
}

/** Runs the authorization request with PKCE S256 in the browser as alice and returns the code. */
export async function grantCode(flow: CodeFlow, scope = 'openid mail.read'): Promise<GrantedCode> {
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(flow.config, {
    redirect_uri: flow.callback.url,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: client.randomState(),
    resource: flow.resource,
  });
  const returned = await consentInBrowser(flow, url, 'alice');
  const code = returned.searchParams.get('code');
  if (code === null) throw new Error(`the authorization response has no code: ${returned.href}`);
  return { code, verifier };
}
