import type { AdminClient } from './client.ts';

/** What a command declares and what it gets: the dispatcher in main.ts knows nothing about any one command. */
export type OptionType = 'string' | 'boolean';

export interface OptionSpec {
  type: OptionType;
  help: string;
  /** Placeholder in help text, e.g. "<id>". */
  value?: string;
  required?: boolean;
  short?: string;
}

export type OptionValues = Record<string, string | boolean | undefined>;

export interface CommandContext {
  /** Created on first use, so a bad option value is reported before a missing admin key. */
  readonly client: AdminClient;
  readonly opts: OptionValues;
  readonly json: boolean;
  /** A progress line on stderr (never stdout, which is for results); silent with --quiet. */
  progress(message: string): void;
  nowMs(): number;
  uuid(): string;
  /** The environment and working directory (for commands that read the local data folder). */
  readonly env: Record<string, string | undefined>;
  readonly cwd: string;
  /** Request timeout for long runs (bill run, codes create): --timeout, else 10 minutes. */
  readonly longTimeoutMs: number;
}

export interface CommandOutput {
  /** Printed with --json: exactly one JSON value on stdout. */
  json: unknown;
  /** Printed without --json. */
  human: string;
}

export interface CommandSpec {
  /** "key create"; a one-word command has no group. */
  name: string;
  aliases?: string[];
  summary: string;
  options: Record<string, OptionSpec>;
  examples?: string[];
  run(ctx: CommandContext): Promise<CommandOutput>;
}
