export * from './types.ts';
export * from './sse.ts';
