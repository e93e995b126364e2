import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { freePort } from '../harness.ts';
import { loadConfig } from '../../src/config/load.ts';
import { startServer, type MandateServer } from '../../src/server.ts';
import { startDocumentServer, type DocumentServer } from '../registration/document-server.ts';
import { createCliEnvironment, runCli, type CliEnvironment } from './cli-runner.ts';

/**
 * The registration commands, run as the `mandate` binary against the database of a real server
 * running in this process, so each policy change is checked where clients see it.
 */
describe('mandate registration and registered commands', () => {
  let cli: CliEnvironment;
  let server: MandateServer;
  let issuer: string;
  let docs: DocumentServer;

  before(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    cli = await createCliEnvironment('mandate-cli-registration-', { MANDATE_PORT: String(port), MANDATE_ALLOW_LOOPBACK_CLIENT_METADATA: 'true' });
    const quiet = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    server = await startServer(loadConfig(cli.env), { logStream: quiet });
    docs = await startDocumentServer();
  });

  after(async () => {
    await docs.close();
    await server.close();
    cli.remove();
  });

  const run = (args: string[]) => runCli(args, cli.env);

  const register = async (metadata: unknown) => {
    const response = await fetch(`${issuer}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };

  test('registration show prints the closed policy', async () => {
    const policy = await run(['registration', 'show']);
    assert.equal(policy.code, 0, policy.stderr);
    assert.match(policy.stdout, /^Dynamic client registration \(RFC 7591\): +off$/m);
    assert.match(policy.stdout, /^Client ID metadata documents: +off$/m);
    assert.match(policy.stdout, /^Metadata document hosts: +any host with public addresses$/m);

    const json = await run(['registration', 'show', '--json']);
    assert.deepEqual(JSON.parse(json.stdout), { dynamic_registration: false, metadata_documents: false, metadata_document_hosts: [] });

    // RFC 7591 §3: the server refuses while the policy is closed.
    assert.equal((await register({ redirect_uris: ['http://127.0.0.1:9/callback'] })).status, 403);
  });

  test('registration set opens dynamic registration', async () => {
    const opened = await run(['registration', 'set', '--dynamic', 'on']);
    assert.equal(opened.code, 0, opened.stderr);
    assert.match(opened.stdout, /^Dynamic client registration \(RFC 7591\): +on$/m);
    assert.match(opened.stdout, /^Client ID metadata documents: +off$/m);

    const registered = await register({ redirect_uris: ['http://127.0.0.1:9/callback'], token_endpoint_auth_method: 'none', client_name: 'Notes helper' });
    assert.equal(registered.status, 201);

    const audit = await run(['audit', 'tail', '--json', '--limit', '1000']);
    const entries = JSON.parse(audit.stdout) as Array<{ event: { event: string; actor?: string } }>;
    const update = entries.find((entry) => entry.event.event === 'registration_policy.updated');
    assert.match(update?.event.actor ?? '', /^cli:/);
  });

  test('registration set limits document hosts', async () => {
    const limited = await run(['registration', 'set', '--metadata-documents', 'on', '--metadata-document-host', 'mcp.example.test', '--metadata-document-host', 'tools.example.test', '--json']);
    assert.equal(limited.code, 0, limited.stderr);
    assert.deepEqual(JSON.parse(limited.stdout), { dynamic_registration: true, metadata_documents: true, metadata_document_hosts: ['mcp.example.test', 'tools.example.test'] });

    const policy = await run(['registration', 'show']);
    assert.match(policy.stdout, /^Metadata document hosts: +mcp\.example\.test, tools\.example\.test$/m);

    const any = await run(['registration', 'set', '--any-metadata-document-host', '--json']);
    assert.equal(any.code, 0, any.stderr);
    assert.deepEqual(JSON.parse(any.stdout).metadata_document_hosts, []);

    const metadata = (await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    assert.equal(metadata.registration_endpoint, `${issuer}/register`);
    assert.equal(metadata.client_id_metadata_document_supported, true);
  });

  test('registered list and make-agent', async () => {
    const registered = await register({ redirect_uris: ['http://127.0.0.1:9/callback'], token_endpoint_auth_method: 'none', client_name: 'Calendar helper' });
    const clientId = String(registered.json.client_id);

    const listed = await run(['registered', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
    const header = listed.stdout.split('\n')[0] ?? '';
    assert.match(header, /^CLIENT_ID +NAME +REGISTRATION +AUTH +REDIRECT_URIS +CREATED$/);
    const row = listed.stdout.split('\n').find((line) => line.startsWith(clientId)) ?? '';
    assert.match(row, /Calendar helper/);
    assert.match(row, / dynamic +none +http:\/\/127\.0\.0\.1:9\/callback /);

    const role = await run(['roles', 'create', '--name', 'calendar-reader', '--permission', '* calendar.read']);
    assert.equal(role.code, 0, role.stderr);
    const makeAgent = await run(['registered', 'make-agent', clientId, '--name', 'Calendar agent', '--role', 'calendar-reader', '--require-dpop']);
    assert.equal(makeAgent.code, 0, makeAgent.stderr);
    assert.equal(makeAgent.stdout, `Made ${clientId} the agent Calendar agent, roles: calendar-reader.\n`);

    const remaining = JSON.parse((await run(['registered', 'list', '--json'])).stdout) as Array<{ client_id: string }>;
    assert.equal(remaining.some((client) => client.client_id === clientId), false);
    const agents = JSON.parse((await run(['agents', 'list', '--json'])).stdout) as Array<Record<string, unknown>>;
    const agent = agents.find((client) => client.client_id === clientId);
    assert.equal(agent?.name, 'Calendar agent');
    assert.equal(agent?.require_dpop, true);
    assert.equal(agent?.registration, 'dynamic');
    assert.deepEqual(agent?.roles, ['calendar-reader']);
  });

  test('make-agent takes a URL client_id as it is', async () => {
    const clientId = `${docs.origin}/notes.json`;
    docs.serve('/notes.json', { body: { client_id: clientId, client_name: 'Notes', redirect_uris: ['http://127.0.0.1:9/callback'] } });
    const query = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: 'http://127.0.0.1:9/callback', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
    const page = await fetch(`${issuer}/authorize?${query.toString()}`, { redirect: 'manual' });
    assert.equal(page.status, 400);
    assert.match(await page.text(), /registered itself/);

    const listed = JSON.parse((await run(['registered', 'list', '--json'])).stdout) as Array<{ client_id: string; registration: string }>;
    assert.equal(listed.find((client) => client.client_id === clientId)?.registration, 'metadata_document');

    const makeAgent = await run(['registered', 'make-agent', clientId, '--name', 'Notes agent', '--json']);
    assert.equal(makeAgent.code, 0, makeAgent.stderr);
    const view = JSON.parse(makeAgent.stdout) as Record<string, unknown>;
    assert.equal(view.client_id, clientId);
    assert.equal(view.kind, 'agent');
    assert.deepEqual(view.roles, []);
  });

  test('bad arguments exit 1 with one line', async () => {
    const waiting = String((await register({ redirect_uris: ['http://127.0.0.1:9/callback'], token_endpoint_auth_method: 'none' })).json.client_id);
    const cases: Array<[string[], RegExp]> = [
      [['registration'], /^mandate registration: no subcommand; use one of show, set\.$/],
      [['registration', 'set'], /Nothing to change; pass --dynamic/],
      [['registration', 'set', '--dynamic', 'yes'], /Invalid --dynamic value "yes": use on or off\./],
      [['registration', 'set', '--metadata-documents'], /--metadata-documents/],
      [['registration', 'set', '--metadata-document-host', 'https://mcp.example.test'], /metadata_document_hosts\.0: must be a lowercase DNS host name/],
      [['registration', 'set', '--metadata-document-host', 'a.example', '--any-metadata-document-host'], /Pass either --metadata-document-host or --any-metadata-document-host, not both\./],
      [['registered', 'approve'], /unknown subcommand approve; use one of list, make-agent\./],
      [['registered', 'make-agent', '--name', 'X'], /Expected <client_id>, got none\./],
      [['registered', 'make-agent', 'reg_unknown', '--name', 'X'], /Registered client reg_unknown was not found/],
      [['registered', 'make-agent', 'reg_unknown'], /name/],
      [['registered', 'make-agent', waiting, '--name', 'X', '--role', 'no-such-role'], /Role no-such-role was not found/],
      [['registered', 'make-agent', waiting, '--name', 'Calendar agent'], /A client named Calendar agent already exists\./],
    ];
    for (const [args, message] of cases) {
      const result = await run(args);
      assert.equal(result.code, 1, args.join(' '));
      assert.equal(result.stdout, '', args.join(' '));
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.match(lines[0] ?? '', message, args.join(' '));
    }

    const stillWaiting = JSON.parse((await run(['registered', 'list', '--json'])).stdout) as Array<{ client_id: string }>;
    assert.ok(stillWaiting.some((client) => client.client_id === waiting));
    const unchanged = JSON.parse((await run(['registration', 'show', '--json'])).stdout) as Record<string, unknown>;
    assert.deepEqual(unchanged, { dynamic_registration: true, metadata_documents: true, metadata_document_hosts: [] });
  });
});
