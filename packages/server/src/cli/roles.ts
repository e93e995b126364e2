import { createRoleRecord, listRoleRecords } from '../admin/roles.ts';
import { UsageError, cliActor, parseCommand, printJson, printTable, subcommand, withContext, type CliIo } from './command.ts';

/** `mandate roles create|list`. */
export async function runRoles(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('roles', args, ['create', 'list']);

  if (name === 'create') {
    const { values } = parseCommand(rest, { name: { type: 'string' }, description: { type: 'string' }, permission: { type: 'string', multiple: true }, json: { type: 'boolean' } }, []);
    const permissions = (values.permission ?? []).map(parsePermission);
    const role = await withContext((ctx) => createRoleRecord(ctx, { name: values.name, description: values.description, permissions }, cliActor()));

    if (values.json === true) printJson(io, role);
    else io.stdout(`Created role ${role.name} (${role.id}) with ${role.permissions.length} permission(s).\n`);
    return 0;
  }

  const { values } = parseCommand(rest, { json: { type: 'boolean' } }, []);
  const roles = await withContext((ctx) => listRoleRecords(ctx));
  if (values.json === true) printJson(io, roles);
  else printTable(io, ['NAME', 'PERMISSIONS', 'DESCRIPTION'], roles.map((role) => [role.name, role.permissions.map((p) => `${p.resource} ${p.action}`).join('; ') || '-', role.description]));
  return 0;
}

/** `--permission "<resource identifier or *> <action or *>"`: neither part can contain a space. */
function parsePermission(text: string): { resource: string; action: string } {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 2) throw new UsageError(`Invalid --permission ${JSON.stringify(text)}: write "<resource identifier or *> <action or *>".`);
  return { resource: parts[0] ?? '', action: parts[1] ?? '' };
}
