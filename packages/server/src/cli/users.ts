import { createUserRecord, disableUserRecord, grantUserRole, listUserRecords, revokeUserRole, type UserView } from '../admin/users.ts';
import { cliActor, formatTime, parseCommand, printJson, printTable, readSecret, subcommand, withContext, type CliIo } from './command.ts';

/** `mandate users create|list|grant|revoke-role|disable`. */
export async function runUsers(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('users', args, ['create', 'list', 'grant', 'revoke-role', 'disable']);

  if (name === 'create') {
    const { values } = parseCommand(
      rest,
      { username: { type: 'string' }, 'display-name': { type: 'string' }, email: { type: 'string' }, role: { type: 'string', multiple: true }, 'password-file': { type: 'string' }, json: { type: 'boolean' } },
      [],
    );
    const password = await readSecret(io, values['password-file'], 'password', '--password-file');
    const user = await withContext((ctx) => createUserRecord(ctx, { username: values.username, password, display_name: values['display-name'], email: values.email, roles: values.role }, cliActor()));
    return printUser(io, user, values.json, 'Created');
  }

  if (name === 'list') {
    const { values } = parseCommand(rest, { json: { type: 'boolean' } }, []);
    const users = await withContext((ctx) => listUserRecords(ctx));
    if (values.json === true) printJson(io, users);
    else printTable(io, ['ID', 'USERNAME', 'STATUS', 'ROLES', 'CREATED'], users.map((user) => [user.id, user.username, user.status, user.roles.join(',') || '-', formatTime(user.created_at)]));
    return 0;
  }

  if (name === 'disable') {
    const { values, positionals } = parseCommand(rest, { json: { type: 'boolean' } }, ['user']);
    const user = await withContext((ctx) => disableUserRecord(ctx, positionals[0] ?? '', cliActor()));
    return printUser(io, user, values.json, 'Disabled');
  }

  const { values, positionals } = parseCommand(rest, { json: { type: 'boolean' } }, ['user', 'role']);
  const [userReference = '', role = ''] = positionals;
  const user = await withContext((ctx) => (name === 'grant' ? grantUserRole(ctx, userReference, { role }, cliActor()) : revokeUserRole(ctx, userReference, role, cliActor())));
  return printUser(io, user, values.json, 'Updated');
}

function printUser(io: CliIo, user: UserView, json: boolean | undefined, verb: string): number {
  if (json === true) printJson(io, user);
  else io.stdout(`${verb} user ${user.username} (${user.id}), status ${user.status}, roles: ${user.roles.join(', ') || 'none'}.\n`);
  return 0;
}
