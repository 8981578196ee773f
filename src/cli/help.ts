import { GLOBAL_OPTIONS } from './args.ts';
import type { CommandSpec, OptionSpec } from './command.ts';

/** Help text generated from the command specs, so it cannot drift from what the parser accepts. */

function optionLines(options: Record<string, OptionSpec>): string[] {
  const heads = Object.entries(options).map(([name, o]) => `${o.short ? `-${o.short}, ` : ''}--${name}${o.value ? ` ${o.value}` : ''}`);
  const width = Math.max(0, ...heads.map((h) => h.length));
  return Object.values(options).map((o, i) => `  ${heads[i]!.padEnd(width)}  ${o.help}${o.required ? ' (required)' : ''}`);
}

function commandList(commands: CommandSpec[]): string[] {
  const width = Math.max(...commands.map((c) => c.name.length));
  return commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
}

export function usageLine(spec: CommandSpec): string {
  const required = Object.entries(spec.options)
    .filter(([, o]) => o.required)
    .map(([n, o]) => `--${n} ${o.value ?? ''}`.trimEnd());
  return `Usage: tokengrid ${[spec.name, ...required].join(' ')} [options]`;
}

export function topHelp(commands: CommandSpec[]): string {
  return [
    'tokengrid: operate a running TokenGrid server over its admin API.',
    '',
    'Usage: tokengrid <command> [options]',
    '',
    'Commands:',
    ...commandList(commands),
    '',
    'Global options:',
    ...optionLines({ ...GLOBAL_OPTIONS, version: { type: 'boolean', help: 'print the version' } }),
    '',
    'Exit codes: 0 done; 1 the server or the network refused (message on stderr); 2 bad command line.',
    'With --json, stdout holds exactly one JSON object when the exit code is 0; progress and errors go to stderr.',
    'Run `tokengrid <command> --help` for the options of a command.',
    '',
    'Offline (no server): tokengrid migrate --from <data-dir> --to <postgres-url> copies a stopped single-node',
    'install into PostgreSQL (`tokengrid migrate --help`).',
  ].join('\n');
}

export function groupHelp(group: string, commands: CommandSpec[]): string {
  const members = commands.filter((c) => c.name.startsWith(`${group} `));
  return [`Usage: tokengrid ${group} <${members.map((c) => c.name.slice(group.length + 1)).join('|')}> [options]`, '', ...commandList(members)].join('\n');
}

export function commandHelp(spec: CommandSpec): string {
  const lines = [usageLine(spec), '', spec.summary];
  if (Object.keys(spec.options).length > 0) lines.push('', 'Options:', ...optionLines(spec.options));
  lines.push('', 'Global options:', ...optionLines(GLOBAL_OPTIONS));
  if (spec.examples?.length) lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}
