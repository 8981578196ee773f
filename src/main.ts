/** Process entry: read argv/env once, build the app, listen, drain on SIGTERM. */
import { parseArgs } from 'node:util';
import { createApp } from './app.ts';
import { ConfigError } from './config/index.ts';

const HELP = `Usage: npm start -- [--host 127.0.0.1] [--port 8080] [--config config/tokengrid.yaml] [--data-dir ./data]
Env: TOKENGRID_HOST, TOKENGRID_PORT, TOKENGRID_CONFIG, TOKENGRID_DATA_DIR, TOKENGRID_LOG_LEVEL, TOKENGRID_ADMIN_KEY (>= 32 characters),
TOKENGRID_METRICS_TOKEN, TOKENGRID_WEBHOOK_URL / TOKENGRID_WEBHOOK_SECRET, TOKENGRID_AUTH_FAILURES_PER_MINUTE, and vendor keys (DEEPSEEK_API_KEY, ...).
Every setting with its default: docs/configuration.md.`;

async function main(): Promise<void> {
  // Files this process creates (database, WAL, key files, exports) are readable by its user only.
  process.umask(0o077);
  let args;
  try {
    args = parseArgs({
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        config: { type: 'string' },
        'data-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${HELP}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(HELP);
    return;
  }
  const port = args.port === undefined ? undefined : Number(args.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    console.error(`--port must be an integer 0..65535, got ${args.port}`);
    process.exit(2);
  }
  const app = await createApp({ host: args.host, port, configPath: args.config, dataDir: args['data-dir'] });
  const { url } = await app.listen();
  const mock = app.config.routingSummary.filter((r) => r.mock).map((r) => r.model);
  const real = app.config.routingSummary.filter((r) => !r.mock).map((r) => `${r.model} -> ${r.providers.join(',')}`);
  app.logger.info({ url, dataDir: app.config.dataDir, realModels: real, mockModels: mock }, 'tokengrid listening');
  // The banner is plain text on stderr, never inside the JSON log lines on stdout, and it holds no secret:
  // the keys are in files of the data folder (mode 0600), and the banner says where.
  const lines = [
    '',
    `TokenGrid is listening on ${url}`,
    `  data folder: ${app.config.dataDir}`,
    `  real upstreams: ${real.length ? real.join('; ') : 'none (no vendor API key in the environment)'}`,
    `  offline emulator serves: ${mock.length ? mock.join(', ') : 'nothing'}`,
    `  admin key: in ${app.adminKeyPath} (mode 0600; \`tokengrid admin-key rotate\` replaces it)`,
  ];
  if (app.firstStart) {
    lines.push(
      '',
      'First start: created the admin key and a demo account.',
      `  demo API key: in ${app.demoKeyPath} (account ${app.firstStart.demoAccountId}: 30M trial tokens + 10 CNY wallet; \`tokengrid demo-key\` prints it)`,
      '',
      `  curl ${url}/v1/chat/completions -H "Authorization: Bearer $(cat ${app.demoKeyPath})" -H "content-type: application/json" \\`,
      `    -d '{"model":"deepseek-v3.2","messages":[{"role":"user","content":"Hello"}]}'`,
    );
  }
  process.stderr.write(lines.join('\n') + '\n\n');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'draining in-flight requests');
    app.close().then(
      () => process.exit(0),
      (e: unknown) => {
        app.logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => {
  if (e instanceof ConfigError) console.error(`tokengrid: ${e.message}`);
  else console.error(e);
  process.exit(1);
});
