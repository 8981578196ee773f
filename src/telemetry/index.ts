export * from './metrics.ts';
export * from './logger.ts';
