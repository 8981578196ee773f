import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp, type App, type AppOptions } from '../../src/app.ts';

export const TEST_CONFIG = new URL('./test-config.yaml', import.meta.url).pathname;

export interface TestServer {
  app: App;
  url: string;
  adminKey: string;
  demoKey: string;
  demoAccountId: string;
  dataDir: string;
  /** Admin API call; returns status and parsed JSON. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

/** A real server on a random loopback port, its own data folder, the emulator in-process. */
export async function startTestServer(opts: Partial<AppOptions> = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'tokengrid-test-'));
  const app = await createApp({
    configPath: TEST_CONFIG,
    dataDir,
    port: 0,
    env: {},
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    timers: false,
    ...opts,
  });
  const { url } = await app.listen();
  const first = app.firstStart!;
  return {
    app,
    url,
    dataDir,
    adminKey: first.adminKey,
    demoKey: first.demoKey,
    demoAccountId: first.demoAccountId,
    async admin(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${first.adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    async close() {
      await app.close(500);
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
