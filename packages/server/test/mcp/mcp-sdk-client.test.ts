import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Browser, BrowserContext } from 'playwright-core';
import { adminApi, type AdminApi } from '../admin/admin-client.ts';
import { launchBrowser, signIn, startCallbackServer, type CallbackServer } from '../browser.ts';
import { PASSWORD } from '../fixtures.ts';
import { startTestServer, type TestServer } from '../harness.ts';
import { startHttpsDocumentServer, type HttpsDocumentServer } from './https-document-server.ts';
import { MemoryOAuthProvider } from './memory-oauth-provider.ts';
import { READ_SCOPE, WRITE_SCOPE, startNotesMcpServer, type NotesMcpServer } from './notes-mcp-server.ts';

/**
 * The MCP TypeScript SDK's own client, unchanged, against an MCP server protected by
 * @mandate/resource: discovery (RFC 9728, then RFC 8414), registration (once by RFC 7591, once by
 * client ID metadata document), the code flow with PKCE and `resource` (RFC 8707) through a real
 * browser, a tool call, and step-up when a tool call gets 403 insufficient_scope.
 */
describe('MCP TypeScript SDK client', () => {
  let documentServer: HttpsDocumentServer;
  let server: TestServer;
  let mcp: NotesMcpServer;
  let admin: AdminApi;
  let callback: CallbackServer;
  let browser: Browser;

  before(async () => {
    documentServer = await startHttpsDocumentServer('/mcp-client.json');
    server = await startTestServer({ allowLoopbackClientMetadata: true }, { trustedCertificates: [documentServer.certificate] });
    mcp = await startNotesMcpServer(server.issuer);
    admin = await adminApi(server);
    callback = await startCallbackServer();
    browser = await launchBrowser();

    const permissions = [READ_SCOPE, WRITE_SCOPE].map((action) => ({ resource: mcp.url, action }));
    await expectStatus(admin.call('POST', '/resources', { name: 'notes', identifier: mcp.url, actions: [{ name: READ_SCOPE }, { name: WRITE_SCOPE }] }), 201);
    await expectStatus(admin.call('POST', '/roles', { name: 'note-taker', permissions }), 201);
    await expectStatus(admin.call('POST', '/roles', { name: 'notes-agent', permissions }), 201);
    await expectStatus(admin.call('POST', '/users', { username: 'ada', password: PASSWORD, roles: ['note-taker'] }), 201);
    await expectStatus(admin.call('PUT', '/registration-policy', { dynamic_registration: true, metadata_documents: true }), 200);
  });

  after(async () => {
    await browser?.close();
    await callback?.close();
    await mcp?.close();
    await server?.stop();
    await documentServer?.close();
  });

  test('dynamic registration, tool call, step-up', async () => {
    const provider = new MemoryOAuthProvider(callback.url);
    const context = await browser.newContext();
    try {
      await assert.rejects(connect(mcp.url, provider), UnauthorizedError);
      const clientId = provider.clientInformation()?.client_id;
      assert.match(clientId ?? '', /^reg_/, 'the SDK registered at /register');
      await expectAuthorizationUrl(provider, server, mcp, READ_SCOPE);

      // Registered but not an agent: Mandate shows an error page and redirects nowhere.
      const page = await context.newPage();
      await page.goto(provider.lastAuthorizationUrl().toString());
      assert.match(await page.textContent('body') ?? '', /an administrator has not yet made it an agent/);
      await page.close();

      await expectStatus(admin.call('POST', `/registered-clients/${encodeURIComponent(clientId ?? '')}/make-agent`, { name: 'Notes MCP client', roles: ['notes-agent'] }), 200);
      await authorizeAndCallTools(provider, context, { signInFirst: true });
    } finally {
      await context.close();
    }
  });

  test('metadata document, tool call, step-up', async () => {
    const provider = new MemoryOAuthProvider(callback.url, documentServer.url);
    documentServer.setDocument({ client_id: documentServer.url, ...provider.clientMetadata });
    const context = await browser.newContext();
    try {
      await assert.rejects(connect(mcp.url, provider), UnauthorizedError);
      assert.equal(provider.clientInformation()?.client_id, documentServer.url, 'the SDK used the document URL as its client_id');
      await expectAuthorizationUrl(provider, server, mcp, READ_SCOPE);

      const page = await context.newPage();
      await page.goto(provider.lastAuthorizationUrl().toString());
      assert.match(await page.textContent('body') ?? '', /an administrator has not yet made it an agent/);
      await page.close();
      assert.equal(documentServer.fetches, 1, 'Mandate fetched the document once and stored it');

      await expectStatus(admin.call('POST', `/registered-clients/${encodeURIComponent(documentServer.url)}/make-agent`, { name: 'Notes MCP client by URL', roles: ['notes-agent'] }), 200);
      await authorizeAndCallTools(provider, context, { signInFirst: true });
      assert.equal(documentServer.fetches, 1, 'the document stayed cached for its max-age');
    } finally {
      await context.close();
    }
  });

  /**
   * Completes the pending authorization in the browser, connects, lists and calls a tool with the
   * read scope, then calls the write tool. The SDK gets 403 insufficient_scope and requests both
   * scopes, and after the person consents again the call goes through.
   */
  async function authorizeAndCallTools(provider: MemoryOAuthProvider, context: BrowserContext, options: { signInFirst: boolean }): Promise<void> {
    await finishAuthorization(provider, context, options.signInFirst);

    const client = await connect(mcp.url, provider);
    try {
      const tools = await client.listTools();
      assert.deepEqual(tools.tools.map((tool) => tool.name).sort(), ['add_note', 'list_notes']);
      const listed = await client.callTool({ name: 'list_notes' });
      assert.equal(listed.isError, undefined);
      assert.equal(provider.tokens()?.scope, READ_SCOPE);

      const before = provider.authorizationUrls.length;
      await assert.rejects(client.callTool({ name: 'add_note', arguments: { text: 'first' } }), UnauthorizedError);
      assert.equal(provider.authorizationUrls.length, before + 1, 'the 403 sent the SDK back to the authorization endpoint');
      await expectAuthorizationUrl(provider, server, mcp, `${READ_SCOPE} ${WRITE_SCOPE}`);

      await finishAuthorization(provider, context, false);
      const added = await client.callTool({ name: 'add_note', arguments: { text: 'stepped up' } });
      assert.deepEqual(added.content, [{ type: 'text', text: 'added stepped up' }]);
      assert.equal(provider.tokens()?.scope, `${READ_SCOPE} ${WRITE_SCOPE}`);
      assert.ok(mcp.notes.includes('stepped up'));
    } finally {
      await client.close();
    }
  }

  /** Opens the latest authorization URL, signs in when asked, allows, and hands the code to the SDK. */
  async function finishAuthorization(provider: MemoryOAuthProvider, context: BrowserContext, signInFirst: boolean): Promise<void> {
    const page = await context.newPage();
    try {
      await page.goto(provider.lastAuthorizationUrl().toString());
      if (signInFirst) await signIn(page, 'ada', PASSWORD);
      const response = callback.next();
      await page.click('#allow');
      const redirected = await response;
      assert.equal(redirected.searchParams.get('iss'), server.issuer);
      const code = redirected.searchParams.get('code');
      assert.ok(code !== null, `the authorization response has a code: ${redirected.search}`);
      const transport = new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: provider });
      await transport.finishAuth(code);
    } finally {
      await page.close();
    }
  }
});

async function connect(url: string, provider: MemoryOAuthProvider): Promise<Client> {
  const client = new Client({ name: 'mandate-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
  return client;
}

/** Checks that the SDK found Mandate through the resource metadata and requests the expected resource and scope, with PKCE S256. */
async function expectAuthorizationUrl(provider: MemoryOAuthProvider, server: TestServer, mcp: NotesMcpServer, scope: string): Promise<void> {
  const url = provider.lastAuthorizationUrl();
  assert.equal(`${url.origin}${url.pathname}`, `${server.issuer}/authorize`);
  assert.equal(url.searchParams.get('resource'), mcp.url);
  assert.equal(url.searchParams.get('scope'), scope);
  assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(url.searchParams.get('client_id'), provider.clientInformation()?.client_id);
}

async function expectStatus(call: Promise<{ status: number; json: unknown }>, status: number): Promise<void> {
  const result = await call;
  assert.equal(result.status, status, JSON.stringify(result.json));
}
