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

const GROUPS: Record<string, CommandGroup> = {
  serve: runServe,
  init: runInit,
  keygen: runKeygen,
  users: runUsers,
  roles: runRoles,
  agents: runAgents,
  apps: runApps,
  resources: runResources,
  credentials: runCredentials,
  delegations: runDelegations,
  registration: runRegistration,
  registered: runRegistered,
  audit: runAudit,
  policy: runPolicy,
};

const USAGE = `Usage: mandate <command> [options]

  serve                                   run the HTTP server
  init [--name N]                         create the first admin client; prints its secret once
  keygen                                  print a new master key for MANDATE_MASTER_KEY
  users create --username U               password on stdin or --password-file
  users list | grant <user> <role> | revoke-role <user> <role> | disable <user>
  roles create --name N --permission "<resource> <action>" ... | list
  agents create --name N [--owner U] [--jwks-file F] [--redirect-uri U]... [--role R]... [--require-dpop]
                [--post-logout-redirect-uri U]...
                [--backchannel-token-delivery-mode poll|ping] [--backchannel-client-notification-endpoint URL]
  agents list | grant <client_id> <role> | revoke-role <client_id> <role>
  agents revoke <client_id>               revoke every delegation of the agent
  agents disable <client_id>
  apps create --name N --redirect-uri U... [--post-logout-redirect-uri U]... [--jwks-file F]
  apps list | disable <client_id>
  resources create --name N [--upstream URL] [--identifier URI] [--token-ttl SECONDS]
                   [--upstream-auth bearer|header:<Name>]
                   [--action "<name> [<method> [<path> [approval]]] [<argument>:String|Long|Boolean]..."]...
  resources list
  credentials set --user U --resource R   credential on stdin or --credential-file
  credentials list [--user U]
  delegations list [--user U] [--agent A] [--active|--revoked]
  delegations revoke <id> | --user U | --agent A [--reason TEXT]
  audit tail [--after SEQ] [--limit N] | verify
  policy show                             print the Cedar policy in force (its version on stderr)
  policy set FILE                         validate the Cedar policy in FILE and save it as the next version
  policy test FILE [--json]               decide the cases of a JSON test file; exit 1 when any differs
  policy replay --candidate FILE [--since AGE|DATE] [--limit N] [--json]
                                          list recorded decisions that the candidate policy would change
  registration show                       show what clients may do without an administrator
  registration set [--dynamic on|off]     RFC 7591 dynamic registration at /register
                   [--metadata-documents on|off]      https client_id URLs and their documents
                   [--metadata-document-host HOST]... only these document hosts
                   [--any-metadata-document-host]     any host with public addresses (the default)
  registered list                         self-registered clients waiting for an administrator
  registered make-agent <client_id> --name N [--role R]... [--require-dpop]
                                          make a self-registered client an agent with these roles

Commands that create something accept --json. Configuration comes from MANDATE_* variables
(MANDATE_DATA_DIR, MANDATE_DATABASE_URL, MANDATE_MASTER_KEY, ...), as for serve.
`;

/** Runs one CLI command and returns its exit code; every failure becomes one line on stderr. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.stdout(USAGE);
    return command === undefined ? 1 : 0;
  }

  const group = GROUPS[command];
  if (group === undefined) {
    io.stderr(`mandate: unknown command ${command}; run mandate --help for the list.\n`);
    return 1;
  }

  try {
    return await group(rest, io);
  } catch (error) {
    io.stderr(`mandate ${command}: ${describeError(error)}\n`);
    return 1;
  }
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
