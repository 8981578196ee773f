/** The `tokengrid` operator CLI: a thin shell over the admin REST API of a running server. */
export { runCli, processIo, type CliIo } from './main.ts';
export { COMMANDS } from './commands/index.ts';
export type { CommandSpec, CommandContext, CommandOutput, OptionSpec } from './command.ts';
export { AdminClient, type ClientOptions } from './client.ts';
export { ApiError, CliError, UsageError, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './errors.ts';
