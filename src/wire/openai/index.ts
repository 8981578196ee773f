export { decodeChatRequest } from './decode-chat.ts';
export { decodeCompletionRequest, decodeEmbeddingRequest } from './decode-other.ts';
export { encodeChatResponse, encodeChatResponseJson, encodeOpenAIUsage, openaiFinishReason, type OpenAIFinishReason } from './encode-chat.ts';
export { OpenAIChatStreamEncoder, type ChatStreamEncoderOptions } from './chat-stream-encoder.ts';
export {
  encodeCompletionResponse, OpenAICompletionStreamEncoder, type CompletionStreamEncoderOptions,
} from './encode-completion.ts';
export { encodeEmbeddingResponse } from './encode-embedding.ts';
export { openaiErrorBody, type OpenAIErrorBody } from './error-body.ts';
