export * from './ports.ts';
export * from './key-snapshot.ts';
export * from './limits.ts';
export * from './gateway.ts';
export * from './stream.ts';
export * from './errors.ts';
export * from './idempotency.ts';
