import type { EmbeddingResponse } from '../types.ts';

/**
 * Canonical embeddings → OpenAI `list` body. base64 is the little-endian float32 bytes of each vector,
 * which the official SDKs request by default and decode with Float32Array.
 */
export function encodeEmbeddingResponse(res: EmbeddingResponse, model: string, encodingFormat: 'float' | 'base64' = 'float'): Record<string, unknown> {
  return {
    object: 'list',
    data: res.data.map((vector, index) => ({
      object: 'embedding',
      index,
      embedding: encodingFormat === 'base64' ? float32Base64(vector) : vector,
    })),
    model,
    usage: { prompt_tokens: res.usage.tokensInput, total_tokens: res.usage.tokensInput },
  };
}

export function float32Base64(vector: readonly number[]): string {
  const bytes = new Uint8Array(vector.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < vector.length; i++) view.setFloat32(i * 4, vector[i] ?? 0, true);
  return Buffer.from(bytes.buffer).toString('base64');
}
