#!/usr/bin/env node
// The `tokengrid` operator CLI. All logic lives in src/cli/. An installed package runs the JavaScript that
// `npm install` compiled into dist/ (the "prepare" script); a checkout without dist/, or
// TOKENGRID_CLI_FROM_SOURCE=1 (the tests: dist/ may be older than the source), runs the TypeScript source
// through tsx's loader (a dev dependency).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
let runCli;
if (process.env.TOKENGRID_CLI_FROM_SOURCE !== '1' && existsSync(fileURLToPath(compiled))) {
  ({ runCli } = await import(compiled.href));
} else {
  const { register } = await import('tsx/esm/api');
  register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
  ({ runCli } = await import('../src/cli/main.ts'));
}
process.exitCode = await runCli(process.argv.slice(2));
