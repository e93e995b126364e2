import { disableClientRecord } from '../admin/clients.ts';
import { cliActor, parseCommand, printJson, subcommand, withContext, type CliIo } from './command.ts';
import { createClientCommand, listClientsCommand, printClient } from './clients.ts';

/** `mandate apps create|list|disable`: applications that sign people in. */
export async function runApps(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('apps', args, ['create', 'list', 'disable']);
  if (name === 'create') return createClientCommand('application', rest, io);
  if (name === 'list') return listClientsCommand('application', rest, io);

  const { values, positionals } = parseCommand(rest, { json: { type: 'boolean' } }, ['client_id']);
  const app = await withContext((ctx) => disableClientRecord(ctx, 'application', positionals[0] ?? '', cliActor()));
  if (values.json === true) printJson(io, app);
  else printClient(io, app, 'Disabled');
  return 0;
}
