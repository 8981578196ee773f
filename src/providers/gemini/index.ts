export { createGeminiAdapter, BYTES_MAX_RESPONSE_DEFAULT, type GeminiAdapterOptions } from './adapter.ts';
