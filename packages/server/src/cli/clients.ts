import { createClientRecord, listClientRecords, type ClientView, type CreatedClientView, type ManagedKind } from '../admin/clients.ts';
import { cliActor, formatTime, parseCommand, printJson, printTable, readJsonFile, withContext, type CliIo } from './command.ts';

/** Shared by `agents create` and `apps create`: the options and the once-only secret output. */
export async function createClientCommand(kind: ManagedKind, args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommand(
    args,
    { name: { type: 'string' }, owner: { type: 'string' }, 'jwks-file': { type: 'string' }, 'redirect-uri': { type: 'string', multiple: true }, 'post-logout-redirect-uri': { type: 'string', multiple: true }, role: { type: 'string', multiple: true }, 'require-dpop': { type: 'boolean' }, json: { type: 'boolean' }, ...(kind === 'agent' ? BACKCHANNEL_OPTIONS : {}) },
    [],
  );
  const jwks = values['jwks-file'] === undefined ? undefined : readJsonFile(values['jwks-file'], '--jwks-file');
  const input = { name: values.name, owner: values.owner, jwks, redirect_uris: values['redirect-uri'], post_logout_redirect_uris: values['post-logout-redirect-uri'], roles: values.role, require_dpop: values['require-dpop'] === true, ...backchannelInput(values) };
  const client = await withContext((ctx) => createClientRecord(ctx, kind, input, cliActor()));

  if (values.json === true) {
    printJson(io, client);
    return 0;
  }
  printCreated(io, client);
  return 0;
}

/** `agents create` options for CIBA Core 1.0 §4: the token delivery mode and the ping notification endpoint. */
const BACKCHANNEL_OPTIONS = { 'backchannel-token-delivery-mode': { type: 'string' }, 'backchannel-client-notification-endpoint': { type: 'string' } } as const;

/** Maps the CIBA options that were given to the admin body's fields, leaving out those that were not. */
function backchannelInput(values: Record<string, unknown>): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  if (values['backchannel-token-delivery-mode'] !== undefined) input.backchannel_token_delivery_mode = values['backchannel-token-delivery-mode'];
  if (values['backchannel-client-notification-endpoint'] !== undefined) input.backchannel_client_notification_endpoint = values['backchannel-client-notification-endpoint'];
  return input;
}

export async function listClientsCommand(kind: ManagedKind, args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommand(args, { json: { type: 'boolean' } }, []);
  const clients = await withContext((ctx) => listClientRecords(ctx, kind));
  if (values.json === true) printJson(io, clients);
  else printTable(io, ['CLIENT_ID', 'NAME', 'STATUS', 'AUTH', 'ROLES', 'CREATED'], clients.map((client) => [client.client_id, client.name, client.status, client.token_endpoint_auth_method, client.roles.join(',') || '-', formatTime(client.created_at)]));
  return 0;
}

export function printClient(io: CliIo, client: ClientView, verb: string): void {
  io.stdout(`${verb} ${client.kind} ${client.name} (${client.client_id}), status ${client.status}, roles: ${client.roles.join(', ') || 'none'}.\n`);
}

function printCreated(io: CliIo, client: CreatedClientView): void {
  printClient(io, client, 'Created');
  io.stdout(`client_id:     ${client.client_id}\n`);
  if (client.client_secret !== undefined) {
    io.stdout(`client_secret: ${client.client_secret}\nThe secret is shown only now; store it in a secret manager.\n`);
  } else {
    io.stdout('The client authenticates with private_key_jwt using the keys of its JWK Set.\n');
  }
}
