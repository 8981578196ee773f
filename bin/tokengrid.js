#!/usr/bin/env node
// The `tokengrid` operator CLI. All logic lives in src/cli/. An installed package runs the JavaScript that
// `npm install` compiled into dist/ (the "prepare" script); a checkout without dist/, or
// TOKENGRID_CLI_FROM_SOURCE=1 (the tests: dist/ may be older than the source), runs the TypeScript source
// through tsx's loader (a dev dependency).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// `tokengrid migrate` is the one offline command: it opens the data folder and PostgreSQL directly, so it lives in
// src/app/ (which may import the stores), not in src/cli/ (which only talks to a running server).
const argv = process.argv.slice(2);
const offline = argv[0] === 'migrate';
const compiled = new URL(offline ? '../dist/app/migrate-command.js' : '../dist/cli/main.js', import.meta.url);
let mod;
if (process.env.TOKENGRID_CLI_FROM_SOURCE !== '1' && existsSync(fileURLToPath(compiled))) {
  mod = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
  mod = await import(offline ? '../src/app/migrate-command.ts' : '../src/cli/main.ts');
}
process.exitCode = offline
  ? await mod.runMigrateCommand(argv.slice(1), {
      stdout: (t) => process.stdout.write(t),
      stderr: (t) => process.stderr.write(t),
      env: process.env,
      nowMs: () => Date.now(),
    })
  : await mod.runCli(argv);
