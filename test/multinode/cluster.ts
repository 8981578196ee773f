/**
 * The multi-node test's cluster (issue 15 item 4): a PostgreSQL server and a Redis server of its own (on free
 * loopback ports, so restarting them never disturbs the shared services other tests use), one emulator process,
 * and N gateway processes (test/multinode/node.ts) sharing the database and Redis. Everything is stopped by
 * `stop()`, also after a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, chmodSync, chownSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const NODE = new URL('./node.ts', import.meta.url).pathname;
const EMULATOR = new URL('../../src/emulator/main.ts', import.meta.url).pathname;

/** The PostgreSQL server binaries (Debian keeps them under /usr/lib/postgresql/<version>/bin), or undefined. */
function pgBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(base, v, 'bin', 'pg_ctl'))) return join(base, v, 'bin');
  return undefined;
}

/** Why the cluster cannot run here (missing binaries), or undefined. */
export function clusterUnavailable(): string | undefined {
  if (pgBin() === undefined) return 'PostgreSQL server binaries (initdb, pg_ctl) are not installed';
  if (spawnSync('redis-server', ['--version']).status !== 0) return 'redis-server is not installed';
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const asRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL binary as the `postgres` user when we are root (the server refuses to run as root). */
function pgRun(bin: string, args: string[]): void {
  const cmd = asRoot ? 'runuser' : bin;
  const argv = asRoot ? ['-u', 'postgres', '--', bin, ...args] : args;
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
}

function pgRunAsync(bin: string, args: string[]): Promise<void> {
  const cmd = asRoot ? 'runuser' : bin;
  const argv = asRoot ? ['-u', 'postgres', '--', bin, ...args] : args;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} ${args.join(' ')} failed: ${err}`))));
  });
}

/** A throwaway PostgreSQL server: initdb in a temp folder, trust auth, loopback only. */
export class PrivatePostgres {
  readonly dir: string;
  readonly bin: string;
  constructor(readonly port: number) {
    this.bin = pgBin()!;
    this.dir = mkdtempSync(join(tmpdir(), 'tg-multinode-pg-'));
    if (asRoot) {
      const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
      const gw = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
      chownSync(this.dir, Number(pw.stdout.trim()), Number(gw.stdout.trim()));
    }
    chmodSync(this.dir, 0o700);
  }
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }
  init(): void {
    pgRun(join(this.bin, 'initdb'), ['-D', this.dir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  }
  start(): void {
    pgRun(join(this.bin, 'pg_ctl'), [
      '-D',
      this.dir,
      '-w',
      '-l',
      join(this.dir, 'server.log'),
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
      'start',
    ]);
  }
  /** Fast shutdown (disconnects every client) and start again on the same port. */
  restart(): void {
    pgRun(join(this.bin, 'pg_ctl'), ['-D', this.dir, '-w', '-m', 'fast', 'stop']);
    this.start();
  }
  /** The same as restart(), without blocking the event loop (clients keep running meanwhile). */
  async restartAsync(): Promise<void> {
    await pgRunAsync(join(this.bin, 'pg_ctl'), ['-D', this.dir, '-w', '-m', 'fast', 'stop']);
    await pgRunAsync(join(this.bin, 'pg_ctl'), [
      '-D',
      this.dir,
      '-w',
      '-l',
      join(this.dir, 'server.log'),
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
      'start',
    ]);
  }
  stop(): void {
    try {
      pgRun(join(this.bin, 'pg_ctl'), ['-D', this.dir, '-w', '-m', 'immediate', 'stop']);
    } catch {
      /* not running */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A throwaway redis-server on its own port; `kill()` is a crash (SIGKILL), `start()` brings it back, empty. */
export class PrivateRedis {
  #child: ChildProcess | undefined;
  constructor(readonly port: number) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('redis-server did not start in 10 s')), 10_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (/Ready to accept connections/.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
    });
  }
  async kill(): Promise<void> {
    const c = this.#child;
    if (c === undefined || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }
}

export interface GatewayNode {
  url: string;
  child: ChildProcess;
  dataDir: string;
}

/** Starts a process that prints one line when ready; resolves with that line. */
function startLine(args: string[], env: NodeJS.ProcessEnv, match: RegExp): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start in 60 s`)), 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!match.test(line)) return;
      clearTimeout(timer);
      resolve({ child, line });
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code} before it was ready`)));
  });
}

export class Cluster {
  readonly adminKey = randomBytes(24).toString('base64url');
  readonly prefix = `tgmn${randomBytes(4).toString('hex')}:`;
  readonly nodes: GatewayNode[] = [];
  pg!: PrivatePostgres;
  redis!: PrivateRedis;
  emulatorUrl = '';
  #emulator: ChildProcess | undefined;

  async start(nodes: number): Promise<void> {
    this.pg = new PrivatePostgres(await freePort());
    this.pg.init();
    this.pg.start();
    this.redis = new PrivateRedis(await freePort());
    await this.redis.start();
    const em = await startLine([EMULATOR, '--port', '0', '--host', '127.0.0.1'], { PATH: process.env.PATH }, /emulator listening on /);
    this.#emulator = em.child;
    this.emulatorUrl = em.line.replace(/.*emulator listening on /, '').trim();
    // One node first (it migrates the empty database), then the others together.
    this.nodes.push(await this.startNode());
    this.nodes.push(...(await Promise.all(Array.from({ length: nodes - 1 }, () => this.startNode()))));
  }

  env(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      TOKENGRID_DATABASE_URL: this.pg.url,
      TOKENGRID_REDIS_URL: this.redis.url,
      TOKENGRID_REDIS_PREFIX: this.prefix,
      TOKENGRID_ADMIN_KEY: this.adminKey,
      ...(process.env.TEST_LOG_LEVEL === undefined ? {} : { TEST_LOG_LEVEL: process.env.TEST_LOG_LEVEL }),
    };
  }

  async startNode(dataDir = mkdtempSync(join(tmpdir(), 'tg-multinode-node-'))): Promise<GatewayNode> {
    const { child, line } = await startLine([NODE, dataDir, this.emulatorUrl], this.env(), /^\{/);
    return { url: (JSON.parse(line) as { url: string }).url, child, dataDir };
  }

  /** kill -9 node i and start a new process on its data folder in its place. */
  async killNode(i: number): Promise<void> {
    const n = this.nodes[i]!;
    const exited = new Promise((r) => n.child.once('exit', r));
    n.child.kill('SIGKILL');
    await exited;
  }

  async restartNode(i: number): Promise<void> {
    this.nodes[i] = await this.startNode(this.nodes[i]!.dataDir);
  }

  async admin(i: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const res = await fetch(this.nodes[i]!.url + path, {
      method,
      headers: { authorization: `Bearer ${this.adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) {
      if (n.child.exitCode === null) n.child.kill('SIGKILL');
      rmSync(n.dataDir, { recursive: true, force: true });
    }
    if (this.#emulator && this.#emulator.exitCode === null) this.#emulator.kill('SIGKILL');
    await this.redis?.kill();
    this.pg?.stop();
  }
}
