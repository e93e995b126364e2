import { bootstrapAdminClient } from '../admin/bootstrap.ts';
import { adminAudience, ADMIN_SCOPE } from '../admin/admin-scope.ts';
import { cliActor, parseCommand, printJson, withContext, type CliIo } from './command.ts';

/** `mandate init`: creates the first admin client and prints its secret once. */
export async function runInit(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommand(args, { name: { type: 'string' }, json: { type: 'boolean' } }, []);

  return withContext(async (ctx) => {
    const admin = await bootstrapAdminClient(ctx, { name: values.name }, cliActor());
    if (values.json === true) {
      printJson(io, admin);
      return 0;
    }

    io.stdout(
      [
        `Created the admin client ${admin.name}.`,
        `client_id:     ${admin.client_id}`,
        `client_secret: ${admin.client_secret}`,
        'The secret is shown only now; store it in a secret manager.',
        `Obtain an admin token with client_credentials at ${ctx.config.issuer}/token, resource=${adminAudience(ctx.config.issuer)}, scope=${ADMIN_SCOPE}.`,
        '',
      ].join('\n'),
    );
    return 0;
  });
}
