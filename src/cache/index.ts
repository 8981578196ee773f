export * from './key.ts';
export * from './answer.ts';
export * from './store.ts';
