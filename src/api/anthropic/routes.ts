import { TokenGridError } from '../../core/index.ts';
import { chatStream, type RequestContext } from '../../gateway/index.ts';
import {
  AnthropicStreamEncoder, anthropicStreamErrorFrame, decodeCountTokensRequest, decodeMessagesRequest,
  encodeCountTokensResponse, encodeMessagesResponse,
} from '../../wire/anthropic/index.ts';
import { estimateChatInputTokens } from '../../wire/index.ts';
import { readJson, sendJson } from '../http.ts';
import type { Route } from '../router.ts';
import { sseSink } from '../sink.ts';
import type { ShellDeps } from '../shell-deps.ts';

function decoded<T>(r: { ok: true; value: T } | { ok: false; code: string; message: string }): T {
  if (r.ok) return r.value;
  throw new TokenGridError('invalid_request', r.message);
}

export function anthropicRoutes(deps: ShellDeps): Route<RequestContext>[] {
  const gw = deps.gateway;
  return [
    {
      method: 'POST', path: '/v1/messages', family: 'anthropic', auth: 'key',
      async handler(rc, ctx) {
        const req = decoded(decodeMessagesRequest(await readJson(rc.req, deps.bodyLimitBytes)));
        const id = `msg_${ctx.requestId.replace(/^req_/, '')}`;
        if (!req.stream) {
          const { response } = await gw.chat(ctx, req);
          sendJson(rc.res, 200, encodeMessagesResponse(response, req.model, id));
          return;
        }
        const encoder = new AnthropicStreamEncoder({ id, model: req.model, inputTokensEstimate: estimateChatInputTokens(req) });
        await chatStream(gw, ctx, req, sseSink(rc.res, encoder, anthropicStreamErrorFrame), deps.streamOptions);
      },
    },
    {
      method: 'POST', path: '/v1/messages/count_tokens', family: 'anthropic', auth: 'key',
      async handler(rc, ctx) {
        const req = decoded(decodeCountTokensRequest(await readJson(rc.req, deps.bodyLimitBytes)));
        sendJson(rc.res, 200, encodeCountTokensResponse(gw.countTokens(ctx, req)));
      },
    },
  ];
}
