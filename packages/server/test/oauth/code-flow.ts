import * as client from 'openid-client';
import type { Browser } from 'playwright-core';
import { PASSWORD } from '../fixtures.ts';
import { signIn, type CallbackServer } from '../browser.ts';

/** What one authorization code flow needs: the browser, the client's redirect endpoint and its openid-client configuration. */
export interface CodeFlow {
  browser: Browser;
  callback: CallbackServer;
  config: client.Configuration;
  resource: string;
}

/**
 * Opens an authorization URL in a fresh browser context, signs the person in on the real
 * sign-in page, clicks Allow and returns the authorization response the client received.
 */
export async function consentInBrowser(flow: CodeFlow, url: URL, username: string): Promise<URL> {
  const page = await flow.browser.newPage();
  try {
    await page.goto(url.href);
    await signIn(page, username, PASSWORD);
    await page.click('#allow');
    return await flow.callback.next();
  } finally {
    await page.close();
  }
}

/** Runs the whole authorization code flow with PKCE for the person and redeems the code with openid-client. */
export async function authorizationCodeTokens(flow: CodeFlow, username: string, scope: string) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(flow.config, {
    redirect_uri: flow.callback.url,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    resource: flow.resource,
  });
  const returned = await consentInBrowser(flow, url, username);
  return client.authorizationCodeGrant(flow.config, returned, { pkceCodeVerifier: verifier, expectedState: state });
}

/** Posts a form (an object, or a ready body for repeated names) to an endpoint, as a client authenticated with HTTP Basic when credentials are given. */
export async function postForm(url: string, form: Record<string, string> | string, credentials?: { clientId: string; secret: string }): Promise<{ status: number; headers: Headers; text: string; json: Record<string, unknown> | undefined }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (credentials !== undefined) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(credentials.clientId)}:${encodeURIComponent(credentials.secret)}`).toString('base64')}`;
  const response = await fetch(url, { method: 'POST', headers, body: typeof form === 'string' ? form : new URLSearchParams(form) });
  return readResponse(response);
}

/** Reads a response's status, headers and body, with the body parsed when it is JSON. */
export async function readResponse(response: Response): Promise<{ status: number; headers: Headers; text: string; json: Record<string, unknown> | undefined }> {
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}
