import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { AdminClient } from './client.ts';
import type { OptionValues } from './command.ts';
import { UsageError } from './errors.ts';
import { positiveInt, str } from './validate.ts';

/** Where the server is and how to prove we are its operator: flags first, then env, then the data folder. */
export interface ConnectionEnv {
  env: Record<string, string | undefined>;
  cwd: string;
  fetch: typeof fetch;
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';
export const DEFAULT_TIMEOUT_MS = 60_000;
/** bill run and codes create may legitimately take minutes on a big install. */
export const LONG_TIMEOUT_MS = 600_000;

/**
 * Without --url or TOKENGRID_URL, the server the same environment starts: TOKENGRID_HOST and TOKENGRID_PORT
 * (a wildcard listen address is reached on loopback), else the default.
 */
export function urlFromServerEnv(env: ConnectionEnv['env']): string | undefined {
  const port = env.TOKENGRID_PORT?.trim();
  const hostRaw = env.TOKENGRID_HOST?.trim();
  if (!port && !hostRaw) return undefined;
  if (port && !/^\d{1,5}$/.test(port)) throw new UsageError(`TOKENGRID_PORT must be a port number, got "${port}"`);
  const host = !hostRaw || hostRaw === '0.0.0.0' || hostRaw === '::' ? '127.0.0.1' : hostRaw;
  return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port || '8080'}`;
}

export function serverUrl(opts: OptionValues, env: ConnectionEnv['env']): string {
  const raw = str(opts, 'url') ?? env.TOKENGRID_URL ?? urlFromServerEnv(env) ?? DEFAULT_URL;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`--url "${raw}" is not a URL (like http://127.0.0.1:8080)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--url must be http:// or https://, got "${raw}"`);
  return raw.replace(/\/+$/, '');
}

export function adminKey(opts: OptionValues, c: Pick<ConnectionEnv, 'env' | 'cwd'>): { key: string; source: string } {
  const flagKey = str(opts, 'admin-key');
  if (flagKey) return { key: flagKey.trim(), source: '--admin-key' };
  if (c.env.TOKENGRID_ADMIN_KEY) return { key: c.env.TOKENGRID_ADMIN_KEY.trim(), source: 'TOKENGRID_ADMIN_KEY' };
  const dir = str(opts, 'data-dir') ?? c.env.TOKENGRID_DATA_DIR ?? 'data';
  const file = join(isAbsolute(dir) ? dir : join(c.cwd, dir), 'admin-key');
  let key: string;
  try {
    key = readFileSync(file, 'utf8').trim();
  } catch (e) {
    const why = (e as { code?: string }).code === 'ENOENT' ? 'not found' : (e as Error).message;
    throw new UsageError(`no admin key: pass --admin-key, set TOKENGRID_ADMIN_KEY, or point --data-dir at the server's data folder (${file}: ${why})`);
  }
  if (!key) throw new UsageError(`no admin key: ${file} is empty`);
  return { key, source: file };
}

export function timeoutMs(opts: OptionValues): number | undefined {
  const t = str(opts, 'timeout');
  return t === undefined ? undefined : positiveInt('timeout', t, 86_400) * 1000;
}

export function createClient(opts: OptionValues, c: ConnectionEnv): AdminClient {
  const baseUrl = serverUrl(opts, c.env);
  const { key, source } = adminKey(opts, c);
  return new AdminClient({ baseUrl, adminKey: key, adminKeySource: source, fetch: c.fetch, timeoutMs: timeoutMs(opts) ?? DEFAULT_TIMEOUT_MS });
}
