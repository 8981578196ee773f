export * from './types.ts';
export * from './sse.ts';
export * from './estimate.ts';
