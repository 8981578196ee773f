import { TokenGridError } from '../../core/index.ts';
import { chatStream, type RequestContext } from '../../gateway/index.ts';
import {
  AnthropicStreamEncoder, anthropicStreamErrorFrame, decodeCountTokensRequest, decodeMessagesRequest,
  encodeCountTokensResponse, encodeMessagesResponse,
} from '../../wire/anthropic/index.ts';
import { estimateChatInputTokens } from '../../wire/index.ts';
import { readJson, sendJson, sendText } from '../http.ts';
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
        const body = await readJson(rc.req, deps.bodyLimitBytes);
        const req = decoded(decodeMessagesRequest(body));
        const id = `msg_${ctx.requestId.replace(/^req_/, '')}`;
        const ticket = gw.idempotency.begin(ctx.key.id, rc.req.headers['idempotency-key'], body);
        if (ticket?.replay) {
          rc.res.setHeader('idempotent-replayed', 'true');
          sendText(rc.res, ticket.replay.status, ticket.replay.body, ticket.replay.contentType);
          return;
        }
        try {
          if (!req.stream) {
            const { response } = await gw.chat(ctx, req);
            const text = JSON.stringify(encodeMessagesResponse(response, req.model, id));
            ticket?.complete({ status: 200, body: text, contentType: 'application/json' });
            sendText(rc.res, 200, text, 'application/json');
            return;
          }
          const encoder = new AnthropicStreamEncoder({ id, model: req.model, inputTokensEstimate: estimateChatInputTokens(req) });
          await chatStream(gw, ctx, req, sseSink(rc.res, encoder, anthropicStreamErrorFrame), deps.streamOptions);
          ticket?.complete(undefined);
        } catch (e) {
          ticket?.abandon();
          throw e;
        }
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
