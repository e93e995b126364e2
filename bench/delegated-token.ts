import { createHash, randomBytes } from 'node:crypto';

export interface CodeFlowInput {
  issuer: string;
  agentId: string;
  agentSecret: string;
  redirectUri: string;
  resource: string;
  scope: string;
  username: string;
  password: string;
}

/** The cookies Mandate set during the flow: the CSRF secret and the session. */
class CookieJar {
  private readonly cookies = new Map<string, string>();

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(';', 1)[0] ?? '';
      const equals = pair.indexOf('=');
      if (equals > 0) this.cookies.set(pair.slice(0, equals).trim(), pair.slice(equals + 1).trim());
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

/**
 * Obtains a delegated access token (`sub` = the person, `act.sub` = the agent) the way an agent
 * does, over plain HTTP: the authorization request with PKCE S256, Mandate's sign-in form, the
 * consent form, and the code redeemed at `/token` with the agent's client_secret_basic.
 */
export async function delegatedTokenByCodeFlow(input: CodeFlowInput): Promise<string> {
  const jar = new CookieJar();
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const authorizePath = `/authorize?${new URLSearchParams({
    response_type: 'code',
    client_id: input.agentId,
    redirect_uri: input.redirectUri,
    scope: input.scope,
    resource: input.resource,
    state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  })}`;

  const toSignIn = await send(input.issuer, authorizePath, jar, { expect: 303 });
  const signInPage = await send(input.issuer, location(toSignIn), jar, { expect: 200 });
  const signInForm = hiddenFields(await signInPage.text());
  const signedIn = await send(input.issuer, '/login', jar, { expect: 303, form: { ...signInForm, username: input.username, password: input.password } });

  const consentPage = await send(input.issuer, location(signedIn), jar, { expect: 200 });
  const consentForm = hiddenFields(await consentPage.text());
  const toClient = await send(input.issuer, '/authorize/consent', jar, { expect: 303, form: { ...consentForm, decision: 'allow' } });

  const callback = new URL(location(toClient));
  const code = callback.searchParams.get('code');
  if (code === null || callback.searchParams.get('state') !== state) throw new Error(`The consent did not return a code with the expected state: ${callback.search}`);

  const response = await fetch(`${input.issuer}/token`, {
    method: 'POST',
    headers: { authorization: basicAuthorization(input.agentId, input.agentSecret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: input.redirectUri, code_verifier: verifier, resource: input.resource }),
  });
  const body = (await response.json()) as { access_token?: string; error?: string };
  if (response.status !== 200 || body.access_token === undefined) throw new Error(`Redeeming the code failed: ${response.status} ${body.error ?? ''}`);
  return body.access_token;
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded, joined by a colon and Base64-encoded. */
export function basicAuthorization(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function send(issuer: string, path: string, jar: CookieJar, options: { expect: number; form?: Record<string, string> }): Promise<Response> {
  const headers: Record<string, string> = { cookie: jar.header() };
  if (options.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  const response = await fetch(new URL(path, issuer), {
    method: options.form === undefined ? 'GET' : 'POST',
    headers,
    redirect: 'manual',
    ...(options.form === undefined ? {} : { body: new URLSearchParams(options.form) }),
  });
  jar.store(response);

  if (response.status !== options.expect) {
    const text = await response.text();
    throw new Error(`${options.form === undefined ? 'GET' : 'POST'} ${path.split('?')[0] ?? path} returned ${response.status}, expected ${options.expect}: ${text.slice(0, 300)}`);
  }
  return response;
}

function location(response: Response): string {
  const value = response.headers.get('location');
  if (value === null) throw new Error(`A ${response.status} response has no Location header.`);
  return value;
}

/** Collects the hidden inputs of one of Mandate's server-rendered forms: the CSRF token and the carried parameters. */
function hiddenFields(html: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)"/g)) {
    fields[unescapeHtml(match[1] ?? '')] = unescapeHtml(match[2] ?? '');
  }
  if (fields._csrf === undefined) throw new Error('The page has no _csrf field; did the form markup change?');
  return fields;
}

function unescapeHtml(text: string): string {
  return text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}
