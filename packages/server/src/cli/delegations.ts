import { listDelegationRecords, revokeDelegationsOfAgent, revokeDelegationsOfUser, revokeOneDelegation, type RevocationResult } from '../admin/delegations.ts';
import { UsageError, cliActor, formatTime, parseCommand, printJson, printTable, subcommand, withContext, type CliIo } from './command.ts';

/** `mandate delegations list|revoke`. */
export async function runDelegations(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('delegations', args, ['list', 'revoke']);

  if (name === 'list') {
    const { values } = parseCommand(rest, { user: { type: 'string' }, agent: { type: 'string' }, active: { type: 'boolean' }, revoked: { type: 'boolean' }, json: { type: 'boolean' } }, []);
    if (values.active === true && values.revoked === true) throw new UsageError('Use either --active or --revoked, not both.');

    let active: 'true' | 'false' | undefined;
    if (values.active === true) active = 'true';
    if (values.revoked === true) active = 'false';

    const delegations = await withContext((ctx) => listDelegationRecords(ctx, { user: values.user, agent: values.agent, active }));
    if (values.json === true) printJson(io, delegations);
    else {
      const rows = delegations.map((item) => [item.id, item.username, item.agent_name, item.resource_identifier, item.scope, formatTime(item.created_at), item.revoked_at === null ? 'active' : `revoked ${formatTime(item.revoked_at)}`]);
      printTable(io, ['ID', 'USER', 'AGENT', 'RESOURCE', 'SCOPE', 'CREATED', 'STATE'], rows);
    }
    return 0;
  }

  const { values, positionals } = parseCommand(rest, { user: { type: 'string' }, agent: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean' } }, ['id'], 1);
  const selectors = [positionals[0], values.user, values.agent].filter((value) => value !== undefined);
  if (selectors.length !== 1) throw new UsageError('Name exactly one of: a delegation id, --user <user>, --agent <client_id>.');

  const body = { reason: values.reason };
  const result: RevocationResult = await withContext((ctx) => {
    if (values.user !== undefined) return revokeDelegationsOfUser(ctx, values.user, body, cliActor());
    if (values.agent !== undefined) return revokeDelegationsOfAgent(ctx, values.agent, body, cliActor());
    return revokeOneDelegation(ctx, positionals[0] ?? '', body, cliActor());
  });

  if (values.json === true) printJson(io, result);
  else io.stdout(`Revoked ${result.revoked} delegation(s).\n`);
  return 0;
}
