/**
 * One gateway node of the multi-node test, in its own process: prints one JSON line {url} when listening.
 * Args: <dataDir> <emulatorUrl>. The environment carries TOKENGRID_DATABASE_URL (the shared PostgreSQL),
 * TOKENGRID_REDIS_URL / TOKENGRID_REDIS_PREFIX and TOKENGRID_ADMIN_KEY (the same on every node). Holds live 6 s
 * and every node sweeps every 300 ms, so a killed node's holds are released by the others within seconds.
 */
import { pino } from 'pino';
import { createApp } from '../../src/app.ts';
import { TEST_CONFIG } from '../support/server.ts';

const [dataDir, emulatorUrl] = process.argv.slice(2);
if (!dataDir || !emulatorUrl) throw new Error('usage: node.ts <dataDir> <emulatorUrl>');
const app = await createApp({
  configPath: TEST_CONFIG,
  dataDir,
  port: 0,
  env: process.env,
  emulatorUrl,
  bootstrapDemo: false,
  logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  charging: { reservationTtlMs: 6_000, reservationGraceMs: 0 },
  sweepIntervalMs: 300,
});
const { url } = await app.listen();
process.stdout.write(`${JSON.stringify({ url })}\n`);
const stop = (): void => {
  app.close(1_000).then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
