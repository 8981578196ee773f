export * from './types.ts';
export * from './keys.ts';
export * from './service.ts';
