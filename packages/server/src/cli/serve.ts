import { loadConfig } from '../config/load.ts';
import { startServer } from '../server.ts';
import { parseCommand, type CliIo } from './command.ts';

/** `mandate serve`: runs the HTTP server until SIGINT or SIGTERM, then closes it gracefully. */
export async function runServe(args: string[], io: CliIo): Promise<number> {
  parseCommand(args, {}, []);

  const config = loadConfig();
  const server = await startServer(config);
  io.stdout(`Mandate is listening on ${server.url} (issuer ${config.issuer}).\n`);

  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      io.stderr(`Received ${signal}; closing open requests and the database.\n`);
      server.close().then(
        () => resolve(0),
        (error: unknown) => {
          io.stderr(`Shutdown failed: ${(error as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
