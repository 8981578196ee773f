import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkRequired, commandWords, optionTypes, parseCommandArgs, resolveCommand, type Resolution } from './args.ts';
import type { CommandContext, CommandOutput, CommandSpec, OptionValues } from './command.ts';
import { COMMANDS } from './commands/index.ts';
import { createClient, LONG_TIMEOUT_MS, timeoutMs } from './connection.ts';
import type { AdminClient } from './client.ts';
import { ApiError, CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.ts';
import { commandHelp, groupHelp, topHelp } from './help.ts';

/**
 * The `tokengrid` command: resolve the command, parse its options strictly, run it against the admin API,
 * print the result (JSON or plain text), and turn every failure into a message and an exit code.
 */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  cwd: string;
  fetch: typeof fetch;
  nowMs(): number;
  uuid(): string;
}

export function processIo(): CliIo {
  // `tokengrid codes create ... | head` closes the pipe early: that is not an error worth a stack.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(EXIT_OK);
  });
  return {
    stdout: (t) => {
      process.stdout.write(t);
    },
    stderr: (t) => {
      process.stderr.write(t);
    },
    env: process.env,
    cwd: process.cwd(),
    fetch: globalThis.fetch,
    nowMs: () => Date.now(),
    uuid: () => randomUUID(),
  };
}

/** Runs one invocation and returns the exit code; never throws. */
export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (e) {
    return reportError(e, io);
  }
}

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  const resolution = resolveCommand(commandWords(argv, optionTypes(COMMANDS)), COMMANDS);
  if (resolution.kind !== 'command') return withoutCommand(resolution, argv, io);
  const { spec } = resolution;
  const opts = parseCommandArgs(spec, argv, resolution.words);
  if (opts.help) {
    io.stdout(`${commandHelp(spec)}\n`);
    return EXIT_OK;
  }
  checkRequired(spec, opts);
  print(await runSpec(spec, opts, io), opts.json === true, io);
  return EXIT_OK;
}

async function runSpec(spec: CommandSpec, opts: OptionValues, io: CliIo): Promise<CommandOutput> {
  try {
    return await spec.run(context(opts, io));
  } catch (e) {
    // Value checks inside a command point the operator at that command's help.
    if (e instanceof UsageError && !e.command) throw new UsageError(e.message, spec.name);
    throw e;
  }
}

const wantsHelp = (argv: string[]): boolean => argv.includes('--help') || argv.includes('-h');

function withoutCommand(r: Exclude<Resolution, { kind: 'command' }>, argv: string[], io: CliIo): number {
  if (r.kind === 'group') {
    if (!wantsHelp(argv)) throw new UsageError(`"${r.group}" needs a subcommand\n${groupHelp(r.group, COMMANDS)}`, r.group);
    io.stdout(`${groupHelp(r.group, COMMANDS)}\n`);
    return EXIT_OK;
  }
  if (r.words[0] === 'help') return helpFor(r.words.slice(1), io);
  if (r.words.length > 0) throw new UsageError(`unknown command "${r.words.join(' ')}"`);
  if (argv.includes('--version')) {
    io.stdout(`${version()}\n`);
    return EXIT_OK;
  }
  if (wantsHelp(argv)) {
    io.stdout(`${topHelp(COMMANDS)}\n`);
    return EXIT_OK;
  }
  io.stderr(`${topHelp(COMMANDS)}\n`);
  return EXIT_USAGE;
}

/** `tokengrid help key create` == `tokengrid key create --help`. */
function helpFor(words: string[], io: CliIo): number {
  const r = resolveCommand(words, COMMANDS);
  if (words.length > 0 && r.kind === 'none') throw new UsageError(`unknown command "${words.join(' ')}"`);
  io.stdout(`${r.kind === 'command' ? commandHelp(r.spec) : r.kind === 'group' ? groupHelp(r.group, COMMANDS) : topHelp(COMMANDS)}\n`);
  return EXIT_OK;
}

function context(opts: OptionValues, io: CliIo): CommandContext {
  let client: AdminClient | undefined;
  const longTimeoutMs = timeoutMs(opts) ?? LONG_TIMEOUT_MS;
  const quiet = opts.quiet === true;
  return {
    get client() {
      client ??= createClient(opts, { env: io.env, cwd: io.cwd, fetch: io.fetch });
      return client;
    },
    opts,
    json: opts.json === true,
    longTimeoutMs,
    nowMs: io.nowMs,
    uuid: io.uuid,
    env: io.env,
    cwd: io.cwd,
    progress: (m) => {
      if (!quiet) io.stderr(`${m}\n`);
    },
  };
}

function print(out: CommandOutput, json: boolean, io: CliIo): void {
  if (json) {
    io.stdout(`${JSON.stringify(out.json, null, 2)}\n`);
    return;
  }
  if (out.human === '') return;
  io.stdout(out.human.endsWith('\n') ? out.human : `${out.human}\n`);
}

function reportError(e: unknown, io: CliIo): number {
  if (e instanceof UsageError) {
    const help = e.command ? `tokengrid ${e.command} --help` : 'tokengrid --help';
    io.stderr(`error: ${e.message}\n(see ${help})\n`);
    return EXIT_USAGE;
  }
  if (e instanceof CliError) {
    const code = e instanceof ApiError && e.code ? ` (${e.code})` : '';
    io.stderr(`error: ${e.message}${code}\n`);
    return EXIT_FAILURE;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  // A bug in the CLI: say so plainly; the stack only on request.
  io.stderr(`error: unexpected failure in tokengrid: ${err.message}\n${io.env.TOKENGRID_DEBUG ? `${err.stack}\n` : ''}`);
  return EXIT_FAILURE;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return `tokengrid ${pkg.version ?? 'unknown'}`;
}
