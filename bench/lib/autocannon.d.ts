// autocannon ships no types; the bench uses its programmatic API with the fields typed in throughput.ts.
declare module 'autocannon';
