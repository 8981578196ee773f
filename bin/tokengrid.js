#!/usr/bin/env node
// The `tokengrid` operator CLI. Plain JS so it runs without a build step: register tsx's loader, then
// load the TypeScript entry. All logic lives in src/cli/.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const { runCli } = await import('../src/cli/main.ts');
process.exitCode = await runCli(process.argv.slice(2));
