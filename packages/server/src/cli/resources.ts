import { createResourceRecord, listResourceRecords } from '../admin/resources.ts';
import { UsageError, cliActor, numberOption, parseCommand, printJson, printTable, readJsonFile, subcommand, withContext, type CliIo } from './command.ts';

/** `mandate resources create|list`. */
export async function runResources(args: string[], io: CliIo): Promise<number> {
  const [name, rest] = subcommand('resources', args, ['create', 'list']);

  if (name === 'create') {
    const { values } = parseCommand(
      rest,
      {
        name: { type: 'string' },
        identifier: { type: 'string' },
        'display-name': { type: 'string' },
        'token-ttl': { type: 'string' },
        upstream: { type: 'string' },
        'upstream-auth': { type: 'string' },
        action: { type: 'string', multiple: true },
        'actions-file': { type: 'string' },
        json: { type: 'boolean' },
      },
      [],
    );
    if (values.action !== undefined && values['actions-file'] !== undefined) throw new UsageError('Use either --action or --actions-file, not both.');

    const actions = values['actions-file'] === undefined ? values.action?.map(parseAction) : readJsonFile(values['actions-file'], '--actions-file');
    const input = {
      name: values.name,
      identifier: values.identifier,
      display_name: values['display-name'],
      access_token_ttl_seconds: numberOption(values['token-ttl']),
      upstream_base_url: values.upstream,
      upstream_auth: values['upstream-auth'],
      actions,
    };
    const resource = await withContext((ctx) => createResourceRecord(ctx, input, cliActor()));

    if (values.json === true) printJson(io, resource);
    else io.stdout(`Created resource ${resource.name} (${resource.identifier}) with actions: ${resource.actions.map((item) => item.name).join(', ') || 'none'}.\n`);
    return 0;
  }

  const { values } = parseCommand(rest, { json: { type: 'boolean' } }, []);
  const resources = await withContext((ctx) => listResourceRecords(ctx));
  if (values.json === true) printJson(io, resources);
  else {
    const rows = resources.map((resource) => [resource.name, resource.identifier, String(resource.access_token_ttl_seconds), resource.upstream_base_url ?? '-', resource.actions.map((item) => item.name).join(',') || '-']);
    printTable(io, ['NAME', 'IDENTIFIER', 'TOKEN_TTL', 'UPSTREAM', 'ACTIONS'], rows);
  }
  return 0;
}

/**
 * `--action "<name> [<method> [<path prefix> [approval]]] [<argument>:<type>]..."`, for example
 * `--action "payments.pay POST /payments amount:Long currency:String"`. Tokens of the form
 * `<argument>:<type>` declare the arguments policies may read, and the others are positional.
 * Descriptions need --actions-file.
 */
function parseAction(text: string): Record<string, unknown> {
  // The name comes first and may itself contain `:` (`repo:write`), so only later tokens can be arguments.
  const [name, ...after] = text.trim().split(/\s+/);
  const declared = after.filter((token) => ARGUMENT_TOKEN.test(token));
  const [method, pathPrefix, flag, ...extra] = after.filter((token) => !ARGUMENT_TOKEN.test(token));
  if (name === undefined || name === '' || extra.length > 0 || (flag !== undefined && flag !== 'approval')) {
    throw new UsageError(`Invalid --action ${JSON.stringify(text)}: write "<name> [<method> [<path prefix> [approval]]] [<argument>:String|Long|Boolean]...".`);
  }

  const args = new Map<string, string>();
  for (const token of declared) {
    const [argument = '', type = ''] = token.split(':');
    if (args.has(argument)) throw new UsageError(`Invalid --action ${JSON.stringify(text)}: the argument ${argument} is declared twice.`);
    args.set(argument, type);
  }
  return { name, method, path_prefix: pathPrefix, requires_approval: flag === 'approval', ...(declared.length === 0 ? {} : { arguments: Object.fromEntries(args) }) };
}

/** An `<argument>:<type>` token. A method, a path prefix (starting with `/`) and `approval` never match. */
const ARGUMENT_TOKEN = /^[A-Za-z_][A-Za-z0-9_]*:[A-Za-z]+$/;
