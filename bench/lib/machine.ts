/** Machine and version facts recorded with every result (a figure without its machine is not a figure). */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import type { Pinning } from './procs.ts';

const require = createRequire(import.meta.url);

function pkgVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function machineInfo(p: Pinning): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryMb: Math.round(os.totalmem() / 1048576),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    taskset: p.available,
    pinning: p.note,
    serverCore: p.serverCore,
    loadCore: p.loadCore,
    emulatorCore: p.loadCore,
    loadAvgAtStart: os.loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

export function versions(): Record<string, string> {
  const root = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return {
    tokengrid: root.version,
    node: process.version,
    v8: process.versions.v8,
    undici: pkgVersion('undici'),
    autocannon: pkgVersion('autocannon'),
    'better-sqlite3': pkgVersion('better-sqlite3'),
    tsx: pkgVersion('tsx'),
  };
}
