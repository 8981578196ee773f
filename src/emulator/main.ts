import { startEmulator } from './index.ts';
import type { EmulatorOptions } from './types.ts';

/**
 * CLI: node --import tsx src/emulator/main.ts --port 9000 [--host 127.0.0.1] [--ttft-ms 20]
 *   [--chunk-interval-ms 20] [--tokens-per-chunk 1] [--output-tokens 24 | --chunks 64] [--verbose]
 * Prints `emulator listening on http://HOST:PORT` once ready; SIGINT/SIGTERM close it.
 * `--chunks N` sets the answer length to N chunks (N * tokens-per-chunk tokens).
 */

const USAGE = 'usage: main.ts [--host H] [--port N] [--ttft-ms N] [--chunk-interval-ms N] [--tokens-per-chunk N] [--output-tokens N | --chunks N] [--verbose]';

function parseArgs(argv: string[]): EmulatorOptions & { host?: string; port?: number; chunks?: number; verbose?: boolean } {
  const out: EmulatorOptions & { host?: string; port?: number; chunks?: number; verbose?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--verbose') {
      out.verbose = true;
      continue;
    }
    if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`missing value for ${flag}\n${USAGE}`);
    if (flag === '--host') {
      out.host = value;
      continue;
    }
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${flag} expects a non-negative integer, got ${value}`);
    if (flag === '--port') out.port = n;
    else if (flag === '--ttft-ms') out.ttftMs = n;
    else if (flag === '--chunk-interval-ms') out.chunkIntervalMs = n;
    else if (flag === '--tokens-per-chunk') out.tokensPerChunk = n;
    else if (flag === '--output-tokens') out.outputTokens = n;
    else if (flag === '--chunks') out.chunks = n;
    else throw new Error(`unknown flag ${flag}\n${USAGE}`);
  }
  if (out.chunks !== undefined) out.outputTokens = out.chunks * Math.max(1, out.tokensPerChunk ?? 1);
  return out;
}

async function main(): Promise<void> {
  const { chunks: _chunks, verbose, ...opts } = parseArgs(process.argv.slice(2));
  const emulator = await startEmulator({ ...opts, logger: verbose === true ? (m) => console.error(m) : undefined });
  console.log(`emulator listening on ${emulator.url}`);
  const stop = (): void => {
    void emulator.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((e: unknown) => {
  console.error((e as Error).message);
  process.exit(2);
});
