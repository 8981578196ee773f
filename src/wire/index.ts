export * from './types.ts';
export * from './sse.ts';
export * from './estimate.ts';
export * from './json.ts';
