/**
 * Upstream emulator: OpenAI, Anthropic and Gemini dialects on one node:http server, written from the
 * vendors' public wire docs (it imports nothing from wire/ or providers/, so a codec bug cannot be
 * mirrored here). Used as test fixture, as the demo's offline "mock" provider, and as the
 * benchmark's upstream.
 */
export { startEmulator } from './server.ts';
export type { Emulator, EmulatorOptions, EmulatorStats } from './types.ts';
export { parseDirectives } from './directives.ts';
