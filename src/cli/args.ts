import { parseArgs } from 'node:util';
import type { CommandSpec, OptionSpec, OptionValues } from './command.ts';
import { UsageError } from './errors.ts';

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', value: '<url>', help: 'server address (env TOKENGRID_URL; else TOKENGRID_HOST/TOKENGRID_PORT; default http://127.0.0.1:8080)' },
  'admin-key': { type: 'string', value: '<key>', help: 'admin key (env TOKENGRID_ADMIN_KEY; else read from <data-dir>/admin-key)' },
  'data-dir': { type: 'string', value: '<dir>', help: "the server's data folder, for its admin-key file (env TOKENGRID_DATA_DIR, default ./data)" },
  json: { type: 'boolean', help: 'print exactly one JSON object on stdout (for scripts)' },
  quiet: { type: 'boolean', short: 'q', help: 'no progress lines on stderr' },
  timeout: { type: 'string', value: '<seconds>', help: 'give up on a request after this long (default 60; 600 for bill run and codes create)' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
};

export type Resolution =
  | { kind: 'command'; spec: CommandSpec; words: string[] }
  | { kind: 'group'; group: string; words: string[] }
  | { kind: 'none'; words: string[] };

/** Option name -> type across the global options and every command (a name means one thing everywhere). */
export function optionTypes(commands: CommandSpec[]): Map<string, OptionSpec> {
  const all = new Map<string, OptionSpec>(Object.entries(GLOBAL_OPTIONS));
  for (const c of commands) for (const [name, spec] of Object.entries(c.options)) if (!all.has(name)) all.set(name, spec);
  return all;
}

/**
 * The words that are not options or option values, in order. Needed before the real parse because the
 * command decides which options are valid, and options may come before it (`tokengrid --json balance`).
 */
export function commandWords(argv: string[], types: Map<string, OptionSpec>): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return [...words, ...argv.slice(i + 1)];
    if (a.startsWith('--')) {
      if (!a.includes('=') && types.get(a.slice(2))?.type === 'string') i++;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) continue;
    words.push(a);
  }
  return words;
}

const namesOf = (c: CommandSpec): string[] => [c.name, ...(c.aliases ?? [])];

export function resolveCommand(words: string[], commands: CommandSpec[]): Resolution {
  for (const n of [2, 1]) {
    const name = words.slice(0, n).join(' ');
    const spec = words.length >= n ? commands.find((c) => namesOf(c).includes(name)) : undefined;
    if (spec) return { kind: 'command', spec, words: words.slice(0, n) };
  }
  const first = words[0];
  if (first && commands.some((c) => c.name.startsWith(`${first} `))) return { kind: 'group', group: first, words: words.slice(0, 1) };
  return { kind: 'none', words };
}

/** Strict parse of one command's argv: unknown options, stray words and missing values are usage errors. */
export function parseCommandArgs(spec: CommandSpec | undefined, argv: string[], words: string[]): OptionValues {
  const specs = { ...GLOBAL_OPTIONS, ...(spec?.options ?? {}) };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, o] of Object.entries(specs)) options[name] = o.short ? { type: o.type, short: o.short } : { type: o.type };
  let parsed: { values: OptionValues; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true }) as { values: OptionValues; positionals: string[] };
  } catch (e) {
    throw new UsageError(parseArgsMessage(e), spec?.name);
  }
  const extra = parsed.positionals.slice(words.length);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, spec?.name);
  return parsed.values;
}

/** Missing required options, checked after --help had its chance. */
export function checkRequired(spec: CommandSpec, values: OptionValues): void {
  const missing = Object.entries(spec.options)
    .filter(([name, o]) => o.required && values[name] === undefined)
    .map(([n]) => `--${n}`);
  if (missing.length > 0) throw new UsageError(`missing ${missing.join(', ')}`, spec.name);
}

/** node:util's messages are long and talk about positionals; say what the operator did wrong. */
function parseArgsMessage(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const option = /'(-{1,2}[^' ]+)/.exec(err.message ?? '')?.[1] ?? 'an option';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${option}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return err.message?.includes('argument missing') || err.message?.includes('ambiguous')
        ? `${option} needs a value (a value starting with "-" is written ${option}=-5)`
        : `${option} takes no value`;
    default:
      return err.message ?? String(e);
  }
}
