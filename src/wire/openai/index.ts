export { decodeChatRequest } from './decode-chat.ts';
export { decodeCompletionRequest, decodeEmbeddingRequest } from './decode-other.ts';
export { encodeChatResponse, encodeChatResponseJson, encodeOpenAIUsage, openaiFinishReason, type OpenAIFinishReason } from './encode-chat.ts';
export { OpenAIChatStreamEncoder, type ChatStreamEncoderOptions } from './chat-stream-encoder.ts';
export {
  encodeCompletionResponse,
  OpenAICompletionStreamEncoder,
  type CompletionStreamEncoderOptions,
} from './encode-completion.ts';
export { encodeEmbeddingResponse } from './encode-embedding.ts';
export { openaiErrorBody, type OpenAIErrorBody } from './error-body.ts';
export { decodeResponsesRequest, itemReferenceIds, MAX_INPUT_ITEMS, responsesItemsToMessages } from './decode-responses.ts';
export { encodeResponsesResponse, encodeResponsesUsage, responseObject, type ResponseEnvelope } from './encode-responses.ts';
export { ResponsesStreamEncoder } from './responses-stream-encoder.ts';
export type { ResponsesRequest, ResponseStore, StoredResponse } from './responses-types.ts';
