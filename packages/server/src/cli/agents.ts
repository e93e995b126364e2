import { disableClientRecord, grantClientRole, revokeClientRole } from '../admin/clients.ts';
import { revokeDelegationsOfAgent } from '../admin/delegations.ts';
import { cliActor, parseCommand, printJson, subcommand, withContext, type CliIo } from './command.ts';
import { createClientCommand, listClientsCommand, printClient } from './clients.ts';

/** `mandate agents create|list|grant|revoke-role|revoke|disable`; `revoke` revokes every delegation of the agent. */
export async function runAgents(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('agents', args, ['create', 'list', 'grant', 'revoke-role', 'revoke', 'disable']);
  if (name === 'create') return createClientCommand('agent', rest, io);
  if (name === 'list') return listClientsCommand('agent', rest, io);

  if (name === 'revoke') {
    const { values, positionals } = parseCommand(rest, { reason: { type: 'string' }, json: { type: 'boolean' } }, ['client_id']);
    const result = await withContext((ctx) => revokeDelegationsOfAgent(ctx, positionals[0] ?? '', { reason: values.reason }, cliActor()));
    if (values.json === true) printJson(io, result);
    else io.stdout(`Revoked ${result.revoked} delegation(s) of ${positionals[0] ?? ''}.\n`);
    return 0;
  }

  if (name === 'disable') {
    const { values, positionals } = parseCommand(rest, { json: { type: 'boolean' } }, ['client_id']);
    const agent = await withContext((ctx) => disableClientRecord(ctx, 'agent', positionals[0] ?? '', cliActor()));
    if (values.json === true) printJson(io, agent);
    else printClient(io, agent, 'Disabled');
    return 0;
  }

  const { values, positionals } = parseCommand(rest, { json: { type: 'boolean' } }, ['client_id', 'role']);
  const [clientId = '', role = ''] = positionals;
  const agent = await withContext((ctx) => (name === 'grant' ? grantClientRole(ctx, 'agent', clientId, { role }, cliActor()) : revokeClientRole(ctx, 'agent', clientId, role, cliActor())));
  if (values.json === true) printJson(io, agent);
  else printClient(io, agent, 'Updated');
  return 0;
}
