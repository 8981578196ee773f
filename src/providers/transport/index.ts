export * from './errors.ts';
export * from './read.ts';
export * from './request.ts';
