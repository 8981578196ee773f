/**
 * A TokenGrid server in its own process, for crash tests: prints one JSON line {url, adminKey, demoKey,
 * demoAccountId} when listening. Args: <dataDir>. Reservations live 1 s and are swept every 200 ms, so a
 * restart reconciles quickly.
 */
import { pino } from 'pino';
import { createApp } from '../../src/app.ts';
import { TEST_CONFIG } from './server.ts';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: crash-server.ts <dataDir>');
const app = await createApp({
  configPath: TEST_CONFIG,
  dataDir,
  port: 0,
  env: {},
  logger: pino({ level: 'silent' }),
  charging: { reservationTtlMs: 1000, reservationGraceMs: 0 },
  sweepIntervalMs: 200,
});
const { url } = await app.listen();
process.stdout.write(JSON.stringify({ url, ...app.firstStart }) + '\n');
