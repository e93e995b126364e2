import { pathToFileURL } from 'node:url';
import { ConfigError } from '../config/load.ts';
import { Problem } from '../http/problem.ts';
import { UsageError, type CliIo } from './command.ts';
import { runAgents } from './agents.ts';
import { runApps } from './apps.ts';
import { runAudit } from './audit.ts';
import { runCredentials } from './credentials.ts';
import { runDelegations } from './delegations.ts';
import { runInit } from './init.ts';
import { runKeygen } from './keygen.ts';
import { runPolicy } from './policy.ts';
import { runRegistered, runRegistration } from './registration.ts';
import { runResources } from './resources.ts';
import { runRoles } from './roles.ts';
import { runServe } from './serve.ts';
import { runUsers } from './users.ts';

type CommandGroup = (args: string[], io: CliIo) => Promise<number>;

/** A top-level command: the function that runs it and its lines of the usage text. */
interface Command {
  run: CommandGroup;
  usage: string;
}

const COMMANDS: Record<string, Command> = {
  serve: { run: runServe, usage: '  serve                                   run the HTTP server\n' },
  init: { run: runInit, usage: '  init [--name N]                         create the first admin client; prints its secret once\n' },
  keygen: { run: runKeygen, usage: '  keygen                                  print a new master key for MANDATE_MASTER_KEY\n' },
  users: {
    run: runUsers,
    usage: `  users create --username U               password on stdin or --password-file
  users list | grant <user> <role> | revoke-role <user> <role> | disable <user>
`,
  },
  roles: { run: runRoles, usage: '  roles create --name N --permission "<resource> <action>" ... | list\n' },
  agents: {
    run: runAgents,
    usage: `  agents create --name N [--owner U] [--jwks-file F] [--redirect-uri U]... [--role R]... [--require-dpop]
                [--post-logout-redirect-uri U]...
                [--backchannel-token-delivery-mode poll|ping] [--backchannel-client-notification-endpoint URL]
  agents list | grant <client_id> <role> | revoke-role <client_id> <role>
  agents revoke <client_id>               revoke every delegation of the agent
  agents disable <client_id>
`,
  },
  apps: {
    run: runApps,
    usage: `  apps create --name N --redirect-uri U... [--post-logout-redirect-uri U]... [--jwks-file F]
  apps list | disable <client_id>
`,
  },
  resources: {
    run: runResources,
    usage: `  resources create --name N [--upstream URL] [--identifier URI] [--token-ttl SECONDS]
                   [--upstream-auth bearer|header:<Name>]
                   [--action "<name> [<method> [<path> [approval]]] [<argument>:String|Long|Boolean]..."]...
                   [--actions-file FILE] [--display-name TEXT]
  resources list
`,
  },
  credentials: {
    run: runCredentials,
    usage: `  credentials set --user U --resource R   credential on stdin or --credential-file
  credentials list [--user U]
`,
  },
  delegations: {
    run: runDelegations,
    usage: `  delegations list [--user U] [--agent A] [--active|--revoked]
  delegations revoke <id> | --user U | --agent A [--reason TEXT]
`,
  },
  audit: {
    run: runAudit,
    usage: `  audit tail [--limit N]                  print the latest N entries (default 100, at most 1000), oldest first
  audit tail --after SEQ [--limit N]      print the first N entries after sequence number SEQ
  audit verify                            check the hash chain; exit 1 when it is broken
`,
  },
  policy: {
    run: runPolicy,
    usage: `  policy show                             print the Cedar policy in force (its version on stderr)
  policy set FILE                         validate the Cedar policy in FILE and save it as the next version
  policy test FILE [--json]               decide the cases of a JSON test file; exit 1 when any differs
  policy replay --candidate FILE [--since AGE|DATE] [--limit N] [--json]
                                          list recorded decisions that the candidate policy would change
`,
  },
  registration: {
    run: runRegistration,
    usage: `  registration show                       show what clients may do without an administrator
  registration set [--dynamic on|off]     RFC 7591 dynamic registration at /register
                   [--metadata-documents on|off]      https client_id URLs and their documents
                   [--metadata-document-host HOST]... only these document hosts
                   [--any-metadata-document-host]     any host with public addresses (the default)
`,
  },
  registered: {
    run: runRegistered,
    usage: `  registered list                         self-registered clients waiting for an administrator
  registered make-agent <client_id> --name N [--role R]... [--require-dpop]
                                          make a self-registered client an agent with these roles
`,
  },
};

/** The names of the top-level commands, in the order of the usage text. */
export const COMMAND_NAMES = Object.keys(COMMANDS);

const USAGE_HEADER = 'Usage: mandate <command> [options]\n\n';
const USAGE_FOOTER = `
Commands that create something accept --json. Configuration comes from MANDATE_* variables
(MANDATE_DATA_DIR, MANDATE_DATABASE_URL, MANDATE_MASTER_KEY, ...), as for serve.
`;
const USAGE = `${USAGE_HEADER}${Object.values(COMMANDS)
  .map((command) => command.usage)
  .join('')}${USAGE_FOOTER}Run mandate <command> --help for the usage of one command.\n`;

/**
 * Runs one CLI command and returns its exit code. Every failure becomes one line on stderr.
 * `--help` or `-h` anywhere before a `--` prints the usage of that command instead of running it,
 * so asking for help never opens the database or changes anything.
 */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    io.stdout(USAGE);
    return command === undefined ? 1 : 0;
  }
  if (command === 'help') return printHelp(rest, io);

  const entry = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (entry === undefined) {
    io.stderr(`mandate: unknown command ${command}; run mandate --help for the list.\n`);
    return 1;
  }
  if (asksForHelp(rest)) {
    io.stdout(commandUsage(entry));
    return 0;
  }

  try {
    return await entry.run(rest, io);
  } catch (error) {
    io.stderr(`mandate ${command}: ${describeError(error)}\n`);
    return 1;
  }
}

/** `mandate help [<command>]`: the usage of one command, or of all of them. */
function printHelp(args: string[], io: CliIo): number {
  const [name, ...extra] = args;
  if (name === undefined) {
    io.stdout(USAGE);
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (entry === undefined || extra.length > 0) {
    io.stderr(`mandate help: expected one command name of ${COMMAND_NAMES.join(', ')}, got ${args.join(' ')}.\n`);
    return 1;
  }
  io.stdout(commandUsage(entry));
  return 0;
}

function commandUsage(command: Command): string {
  return `${USAGE_HEADER}${command.usage}${USAGE_FOOTER}`;
}

/** Reports whether the arguments request help. An argument after `--` is a value, not an option. */
function asksForHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  const options = end === -1 ? args : args.slice(0, end);
  return options.includes('--help') || options.includes('-h');
}

/** Formats an error as one line for the operator, without a stack trace. */
function describeError(error: unknown): string {
  if (error instanceof UsageError || error instanceof ConfigError) return oneLine(error.message);
  if (error instanceof Problem) return oneLine(error.detail);
  if (error instanceof Error) return oneLine(`${error.message} (${error.name})`);
  return 'The command failed for an unknown reason.';
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stdin: process.stdin,
  };
}

// Also runnable directly: `node --import tsx packages/server/src/cli/main.ts <command>`.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
