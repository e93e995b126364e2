import { listClientRecords } from '../admin/clients.ts';
import { makeRegisteredClientAgent, showRegistrationPolicy, updateRegistrationPolicy, type RegistrationPolicyView } from '../admin/registration.ts';
import { UsageError, cliActor, formatTime, parseCommand, printJson, printTable, subcommand, withContext, type CliIo } from './command.ts';

/** `mandate registration show|set`: what clients may do without an administrator creating them. */
export async function runRegistration(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('registration', args, ['show', 'set']);

  if (name === 'show') {
    const { values } = parseCommand(rest, { json: { type: 'boolean' } }, []);
    const policy = await withContext((ctx) => showRegistrationPolicy(ctx));
    if (values.json === true) printJson(io, policy);
    else printPolicy(io, policy);
    return 0;
  }

  const { values } = parseCommand(
    rest,
    {
      dynamic: { type: 'string' },
      'metadata-documents': { type: 'string' },
      'metadata-document-host': { type: 'string', multiple: true },
      'any-metadata-document-host': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    [],
  );
  const hosts = values['metadata-document-host'];
  const anyHost = values['any-metadata-document-host'] === true;
  if (hosts !== undefined && anyHost) throw new UsageError('Pass either --metadata-document-host or --any-metadata-document-host, not both.');
  const input = {
    dynamic_registration: onOff(values.dynamic, '--dynamic'),
    metadata_documents: onOff(values['metadata-documents'], '--metadata-documents'),
    metadata_document_hosts: anyHost ? [] : hosts,
  };
  if (Object.values(input).every((value) => value === undefined)) {
    throw new UsageError('Nothing to change; pass --dynamic, --metadata-documents, --metadata-document-host or --any-metadata-document-host.');
  }

  const policy = await withContext((ctx) => updateRegistrationPolicy(ctx, input, cliActor()));
  if (values.json === true) printJson(io, policy);
  else printPolicy(io, policy);
  return 0;
}

/** `mandate registered list|make-agent`: clients that registered themselves and wait for an administrator. */
export async function runRegistered(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('registered', args, ['list', 'make-agent']);

  if (name === 'list') {
    const { values } = parseCommand(rest, { json: { type: 'boolean' } }, []);
    const clients = await withContext((ctx) => listClientRecords(ctx, 'registered'));
    if (values.json === true) printJson(io, clients);
    else printTable(io, ['CLIENT_ID', 'NAME', 'REGISTRATION', 'AUTH', 'REDIRECT_URIS', 'CREATED'], clients.map((client) => [client.client_id, client.name, client.registration ?? '-', client.token_endpoint_auth_method, client.redirect_uris.join(' '), formatTime(client.created_at)]));
    return 0;
  }

  const { values, positionals } = parseCommand(rest, { name: { type: 'string' }, role: { type: 'string', multiple: true }, 'require-dpop': { type: 'boolean' }, json: { type: 'boolean' } }, ['client_id']);
  const clientId = positionals[0] ?? '';
  const input = { name: values.name, roles: values.role, require_dpop: values['require-dpop'] === true };
  const agent = await withContext((ctx) => makeRegisteredClientAgent(ctx, clientId, input, cliActor()));
  if (values.json === true) printJson(io, agent);
  else io.stdout(`Made ${agent.client_id} the agent ${agent.name}, roles: ${agent.roles.join(', ') || 'none'}.\n`);
  return 0;
}

/** Converts an on|off option to a boolean; an absent option stays undefined, so the policy keeps its value. */
function onOff(value: string | undefined, option: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new UsageError(`Invalid ${option} value ${JSON.stringify(value)}: use on or off.`);
}

function printPolicy(io: CliIo, policy: RegistrationPolicyView): void {
  const hosts = policy.metadata_document_hosts.length === 0 ? 'any host with public addresses' : policy.metadata_document_hosts.join(', ');
  io.stdout(
    [
      `Dynamic client registration (RFC 7591):  ${policy.dynamic_registration ? 'on' : 'off'}`,
      `Client ID metadata documents:            ${policy.metadata_documents ? 'on' : 'off'}`,
      `Metadata document hosts:                 ${hosts}`,
      '',
    ].join('\n'),
  );
}
