/**
 * The CLI's two failure kinds. A UsageError is the operator's invocation (exit 2: fix the command line);
 * a CliError is everything the server or the network said (exit 1). Neither prints a stack trace.
 */
export class UsageError extends Error {
  /** The command whose help the message should point at, when known. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/** An error answer of the admin API: the server's message, stable code and HTTP status. */
export class ApiError extends CliError {
  readonly status: number;
  readonly code: string | undefined;
  readonly requestId: string | undefined;
  constructor(message: string, status: number, code: string | undefined, requestId: string | undefined) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
