/**
 * Running the coding agents (Claude Code, Codex) non-interactively against a test server.
 *
 * The agents live in test/agents/package.json (with its lock file), not in the root install: Claude Code
 * ships a ~245 MB native binary. `ensureAgents()` installs that package on first use (`.ci/run` installs it
 * before `npm test`; on a developer's machine the first agent test does), once, under a lock directory so
 * two test files running at the same time do not both install.
 *
 * Each run gets a fresh HOME (and CODEX_HOME), a work directory, and an environment built from scratch (no
 * key or config of the developer's leaks in). HTTP(S)_PROXY point at a trap that records any attempt to
 * reach another host; NO_PROXY keeps the agent's own requests to the loopback server direct.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const AGENTS_DIR = fileURLToPath(new URL('.', import.meta.url));
export const BIN = {
  claude: join(AGENTS_DIR, 'node_modules', '.bin', 'claude'),
  codex: join(AGENTS_DIR, 'node_modules', '.bin', 'codex'),
};

const INSTALL_TIMEOUT_MS = 10 * 60_000;

function installed(): boolean {
  return (
    existsSync(BIN.claude) &&
    existsSync(BIN.codex) &&
    existsSync(join(AGENTS_DIR, 'node_modules', '@anthropic-ai', 'claude-code', 'package.json')) &&
    existsSync(join(AGENTS_DIR, 'node_modules', '@openai', 'codex', 'package.json'))
  );
}

/** Installs test/agents/package.json's agents if they are missing (once, under a lock). */
export async function ensureAgents(): Promise<void> {
  if (installed()) return;
  const lock = join(AGENTS_DIR, '.install.lock');
  const deadline = Date.now() + INSTALL_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      /* another test file is installing */
    }
    if (installed()) return;
    try {
      if (Date.now() - statSync(lock).mtimeMs > INSTALL_TIMEOUT_MS) rmSync(lock, { recursive: true, force: true });
    } catch {
      /* gone */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock} (another agent install)`);
    await sleep(500);
  }
  try {
    if (installed()) return;
    const r = spawnSync('npm', ['install', '--prefix', AGENTS_DIR, '--no-audit', '--no-fund'], {
      cwd: AGENTS_DIR,
      encoding: 'utf8',
      timeout: INSTALL_TIMEOUT_MS,
      env: process.env,
    });
    if (r.status !== 0 || !installed()) {
      throw new Error(`installing the coding agents (npm install --prefix test/agents) failed: ${r.error?.message ?? ''}\n${r.stdout}\n${r.stderr}`);
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** A proxy that refuses everything and remembers what was asked: an agent reaching for another host. */
export interface Trap {
  url: string;
  hits: string[];
  close(): Promise<void>;
}

export async function startTrap(): Promise<Trap> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.writeHead(403).end();
  });
  server.on('connect', (req, socket) => {
    hits.push(`CONNECT ${req.url}`);
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface Sandbox {
  home: string;
  work: string;
  env: Record<string, string>;
  cleanup(): void;
}

/** The secret the tool round trip must carry: it is only in the work directory's files. */
export const SECRET = 'PAPAYA-7f3c';

/**
 * A fresh HOME and work directory. The work directory holds `secret.txt`; `demo` (on PATH, and on a login
 * shell's PATH through ~/.profile) prints the same secret, so a tool call whose command is the emulator's
 * placeholder also reads it.
 */
export function sandbox(trap: Trap): Sandbox {
  const home = mkdtempSync(join(tmpdir(), 'tokengrid-agent-home-'));
  const work = mkdtempSync(join(tmpdir(), 'tokengrid-agent-work-'));
  const bin = join(home, 'bin');
  mkdirSync(bin);
  writeFileSync(join(work, 'secret.txt'), `The secret word is ${SECRET}.\n`);
  writeFileSync(join(bin, 'demo'), `#!/bin/sh\ncat "${join(work, 'secret.txt')}"\n`, { mode: 0o755 });
  writeFileSync(join(home, '.profile'), `PATH="${bin}:$PATH"\n`);
  const env: Record<string, string> = {
    PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: home,
    TMPDIR: tmpdir(),
    TERM: 'dumb',
    NO_COLOR: '1',
    LANG: 'C.UTF-8',
    HTTP_PROXY: trap.url,
    HTTPS_PROXY: trap.url,
    ALL_PROXY: trap.url,
    http_proxy: trap.url,
    https_proxy: trap.url,
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
  return {
    home,
    work,
    env,
    cleanup() {
      rmSync(home, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command with stdin closed, killing it (and failing) after `timeoutMs`. */
export function run(cmd: string, args: string[], opts: { cwd: string; env: Record<string, string>; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, opts.timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** What an agent's failed run printed, for an assertion message. */
export function describeRun(r: RunResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}${r.timedOut ? ' after the timeout' : ''}\nstdout: ${r.stdout.slice(-3000)}\nstderr: ${r.stderr.slice(-3000)}`;
}

/**
 * The test models the agents run on, with the emulator path their upstream is called on (streaming) and
 * whether the emulator's counterpart answers a tool result from it (its OpenAI chat and Anthropic dialects
 * do; its Gemini dialect calls the first tool and answers a tool result with its generic text).
 */
export const AGENT_MODELS: Record<string, { upstreamPath: string; answersFromToolResult: boolean }> = {
  'deepseek-v3.2': { upstreamPath: '/v1/chat/completions', answersFromToolResult: true },
  'claude-4.7': { upstreamPath: '/v1/messages', answersFromToolResult: true },
  'gemini-3-pro': { upstreamPath: '/v1beta/models/gemini-3-pro-preview:streamGenerateContent', answersFromToolResult: true },
};

/**
 * The offer catalog the agent tests serve: a developer package whose allowance pays only for deepseek-v3.2
 * and whose modelMap sends the vendors' ids the agents default to (claude-*, gpt-*) to it.
 */
export const DEV_PACKAGE = 'dev-agents';
export const AGENT_OFFERS_YAML = `version: "agent-tests"
currency: CNY
defaults:
  channel: phone_bill
offers:
  ${DEV_PACKAGE}:
    name: "Developer package for coding agents"
    type: plan
    price: "39.90"
    cycle: month
    allowance: { tokens: 15M }
    models: [deepseek-v3.2]
    modelMap: { "claude-*": deepseek-v3.2, "gpt-*": deepseek-v3.2, "o3*": deepseek-v3.2, "o4-*": deepseek-v3.2 }
    overage: block
`;
