import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import pino from 'pino';
import { loadConfig } from '../config/load.ts';
import type { ServerContext } from '../context.ts';
import { createContext } from '../server.ts';

/** A mistake in the command line; main prints its message and exits with 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Output streams of one CLI run; tests and main pass the process streams. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

export type CommandOptions = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses a subcommand's arguments strictly: an unknown option, a missing value or a wrong number of
 * positional arguments is a UsageError. The last `optional` positionals may be left out.
 */
export function parseCommand<Options extends CommandOptions>(args: string[], options: Options, positionals: string[], optional = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0] ?? 'Invalid arguments.');
  }

  const count = parsed.positionals.length;
  if (count > positionals.length || count < positionals.length - optional) {
    const expected = positionals.length === 0 ? 'no positional arguments' : positionals.map((name) => `<${name}>`).join(' ');
    throw new UsageError(`Expected ${expected}, got ${parsed.positionals.length === 0 ? 'none' : parsed.positionals.join(' ')}.`);
  }
  return parsed;
}

/** Returns the one subcommand of a group, or throws a UsageError listing the known ones. */
export function subcommand(_group: string, args: string[], known: string[]): [string, string[]] {
  const [name, ...rest] = args;
  if (name === undefined || !known.includes(name)) {
    const given = name === undefined ? 'no subcommand' : `unknown subcommand ${name}`;
    // main prefixes every message with `mandate <group>:`.
    throw new UsageError(`${given}; use one of ${known.join(', ')}.`);
  }
  return [name, rest];
}

/**
 * Opens the database and keys with the same configuration as `mandate serve` (MANDATE_* variables
 * and MANDATE_CONFIG), runs `work`, and closes the database. Logs go to stderr at warn level
 * unless MANDATE_LOG_LEVEL sets another level, so stdout carries only the command's output.
 */
export async function withContext<T>(work: (ctx: ServerContext) => Promise<T>): Promise<T> {
  const overrides = process.env.MANDATE_LOG_LEVEL === undefined ? { logLevel: 'warn' } : {};
  const ctx = await createContext(loadConfig(process.env, overrides), { logStream: pino.destination(2) });
  try {
    return await work(ctx);
  } finally {
    await ctx.store.close();
  }
}

/** Returns the audit actor of CLI commands: the operating system account that ran them. */
export function cliActor(): string {
  return `cli:${userInfo().username}`;
}

/**
 * Reads a secret from a file when `file` is given, or else from stdin, which must not be a
 * terminal. Secrets never come from argv, where other local users can read them in the process list.
 */
export async function readSecret(io: CliIo, file: string | undefined, what: string, fileOption: string): Promise<string> {
  if (file !== undefined) {
    try {
      return stripFinalNewline(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new UsageError(`Cannot read ${what} from ${file}: ${(error as NodeJS.ErrnoException).code ?? 'read failed'}.`);
    }
  }

  if (io.stdin.isTTY === true) throw new UsageError(`Pipe the ${what} on stdin or pass ${fileOption} <file>.`);
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return stripFinalNewline(Buffer.concat(chunks).toString('utf8'));
}

function stripFinalNewline(text: string): string {
  return text.replace(/\r?\n$/, '');
}

/** Reads and parses a JSON file named on the command line. */
export function readJsonFile(file: string, option: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`Cannot read ${option} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'read failed'}.`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new UsageError(`${option} ${file} is not valid JSON.`);
  }
}

/** Converts a whole-number option to a number; anything else goes through unchanged so that validation names it. */
export function numberOption(value: string | undefined): number | string | undefined {
  if (value === undefined) return undefined;
  return /^\d+$/.test(value) ? Number(value) : value;
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints rows as aligned columns with a header line. */
export function printTable(io: CliIo, columns: string[], rows: string[][]): void {
  const widths = columns.map((column, index) => Math.max(column.length, ...rows.map((row) => (row[index] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join('  ').trimEnd();
  io.stdout(`${[line(columns), ...rows.map(line)].join('\n')}\n`);
}

export function formatTime(seconds: number | null): string {
  return seconds === null ? '-' : new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
