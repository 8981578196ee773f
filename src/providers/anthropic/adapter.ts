/**
 * The 'anthropic' adapter: TokenGrid as a client of api.anthropic.com or any upstream speaking the
 * Anthropic Messages API. One attempt per call; failures are UpstreamError (see ../types.ts).
 */
import type { ChatRequest, ChatResponse } from '../../wire/index.ts';
import type { ProviderAdapter, UpstreamCall, UpstreamStream } from '../types.ts';
import { buildMessagesBody } from './build-request.ts';
import { postMessages, readText } from './http.ts';
import { parseMessageResponse } from './parse-response.ts';
import { readAnthropicStream } from './stream-reader.ts';

export function createAnthropicAdapter(): ProviderAdapter {
  return {
    kind: 'anthropic',

    async chat(call: UpstreamCall, req: ChatRequest): Promise<ChatResponse> {
      const res = await postMessages(call, buildMessagesBody(req, call.upstreamModel, false), false, req.anthropicNative?.headers);
      const text = await readText(call, res.body);
      // Anthropic messages carry no creation time; this is the time the answer arrived.
      return parseMessageResponse(text, Math.floor(Date.now() / 1000));
    },

    async chatStream(call: UpstreamCall, req: ChatRequest): Promise<UpstreamStream> {
      const res = await postMessages(call, buildMessagesBody(req, call.upstreamModel, true), true, req.anthropicNative?.headers);
      return { events: readAnthropicStream(call, res.body) };
    },
  };
}
