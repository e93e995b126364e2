import { listCredentials, setCredential } from '../admin/credentials.ts';
import { cliActor, formatTime, parseCommand, printJson, printTable, readSecret, subcommand, withContext, type CliIo } from './command.ts';

/** `mandate credentials set|list`; `set` reads the credential from stdin or --credential-file and never prints it. */
export async function runCredentials(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('credentials', args, ['set', 'list']);

  if (name === 'set') {
    const { values } = parseCommand(rest, { user: { type: 'string' }, resource: { type: 'string' }, 'credential-file': { type: 'string' }, json: { type: 'boolean' } }, []);
    const credential = await readSecret(io, values['credential-file'], 'credential', '--credential-file');
    const saved = await withContext((ctx) => setCredential(ctx, values.user ?? '', values.resource ?? '', { credential }, cliActor()));

    if (values.json === true) printJson(io, saved.connection);
    else io.stdout(`${saved.created ? 'Stored' : 'Replaced'} the credential of user ${saved.connection.user_id} for resource ${saved.connection.resource_id} (${saved.connection.id}).\n`);
    return 0;
  }

  const { values } = parseCommand(rest, { user: { type: 'string' }, json: { type: 'boolean' } }, []);
  const connections = await withContext((ctx) => listCredentials(ctx, { user: values.user }));
  if (values.json === true) printJson(io, connections);
  else printTable(io, ['ID', 'USER', 'RESOURCE', 'UPDATED'], connections.map((connection) => [connection.id, connection.user_id, connection.resource_id, formatTime(connection.updated_at)]));
  return 0;
}
