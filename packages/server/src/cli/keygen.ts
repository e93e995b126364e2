import { generateMasterKey } from '../crypto/master-key.ts';
import { parseCommand, type CliIo } from './command.ts';

/** `mandate keygen`: prints a new master key for MANDATE_MASTER_KEY. */
export async function runKeygen(args: string[], io: CliIo): Promise<number> {
  parseCommand(args, {}, []);
  io.stdout(`${generateMasterKey()}\n`);
  return 0;
}
