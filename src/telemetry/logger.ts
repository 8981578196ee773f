import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs (pino). Level from TOKENGRID_LOG_LEVEL (default info; 'silent' in tests). */
export function createLogger(level = process.env.TOKENGRID_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'tokengrid' }, timestamp: pino.stdTimeFunctions.isoTime });
}
