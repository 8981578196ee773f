import type { IncomingMessage } from 'node:http';
import { TokenGridError } from '../../core/index.ts';
import type { Gateway, RequestContext } from '../../gateway/index.ts';
import {
  AnthropicStreamEncoder,
  anthropicStreamErrorFrame,
  decodeCountTokensRequest,
  decodeMessagesRequest,
  encodeCountTokensResponse,
  encodeMessagesResponse,
} from '../../wire/anthropic/index.ts';
import { estimateChatInputTokens, type ChatRequest } from '../../wire/index.ts';
import { readJson, sendJson, sendText } from '../http.ts';
import type { Route } from '../router.ts';
import { sseSink } from '../sink.ts';
import type { ShellDeps } from '../shell-deps.ts';

function decoded<T>(r: { ok: true; value: T } | { ok: false; code: string; message: string }): T {
  if (r.ok) return r.value;
  throw new TokenGridError('invalid_request', r.message);
}

/** The client's vendor headers an Anthropic upstream needs (betas such as prompt caching scope, thinking, ...). */
const FORWARDED_HEADERS = ['anthropic-beta', 'anthropic-version'] as const;

function vendorHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const v = req.headers[name];
    const value = Array.isArray(v) ? v.join(',') : v;
    if (value !== undefined && value.trim() !== '') out[name] = value.trim();
  }
  return out;
}

/**
 * Resolve the model as admission will (package mapping, aliases; 404/403 in Anthropic's shape), and refuse
 * what only Anthropic can serve (server tools, document blocks, ...) when the model's upstream is another
 * vendor: a clear 400 instead of a request that silently loses part of its input.
 */
function prepare(gw: Gateway, ctx: RequestContext, req: ChatRequest, rcReq: IncomingMessage): string {
  const model = gw.resolve(ctx, req.model, req);
  const native = req.anthropicNative;
  if (native !== undefined) {
    native.headers = vendorHeaders(rcReq);
    const first = native.requires[0];
    if (first !== undefined) {
      const providers = gw.deps.providers();
      const allAnthropic = model.deployments.length > 0 && model.deployments.every((d) => providers.get(d.provider)?.adapter === 'anthropic');
      if (!allAnthropic) {
        const param = first.slice(0, first.indexOf(':'));
        throw new TokenGridError(
          'invalid_request',
          `${first} is only supported when the model is served by Anthropic; '${req.model}' is served by ${model.vendor}. Remove it or choose a Claude model.`,
          param,
        );
      }
    }
  }
  return model.id;
}

export function anthropicRoutes(deps: ShellDeps): Route<RequestContext>[] {
  const gw = deps.gateway;
  return [
    {
      method: 'POST',
      path: '/v1/messages',
      family: 'anthropic',
      auth: 'key',
      async handler(rc, ctx) {
        const body = await readJson(rc.req, deps.bodyLimitBytes);
        const req = decoded(decodeMessagesRequest(body));
        // The response names the catalog model actually used (after aliases and the package's mapping).
        const modelId = prepare(gw, ctx, req, rc.req);
        const id = `msg_${ctx.requestId.replace(/^req_/, '')}`;
        const ticket = await gw.idempotency.begin(ctx.key.id, '/v1/messages', rc.req.headers['idempotency-key'], body);
        if (ticket?.replay) {
          rc.res.setHeader('idempotent-replayed', 'true');
          sendText(rc.res, ticket.replay.status, ticket.replay.body, ticket.replay.contentType);
          return;
        }
        try {
          if (!req.stream) {
            const { response, model } = await gw.chat(ctx, req);
            const text = JSON.stringify(encodeMessagesResponse(response, model.id, id));
            if (ticket) await ticket.complete({ status: 200, body: text, contentType: 'application/json' });
            sendText(rc.res, 200, text, 'application/json');
            return;
          }
          const encoder = new AnthropicStreamEncoder({ id, model: modelId, inputTokensEstimate: estimateChatInputTokens(req) });
          await gw.chatStream(ctx, req, sseSink(rc.res, encoder, anthropicStreamErrorFrame), deps.streamOptions);
          if (ticket) await ticket.complete(undefined);
        } catch (e) {
          if (ticket) await ticket.abandon();
          throw e;
        }
      },
    },
    {
      method: 'POST',
      path: '/v1/messages/count_tokens',
      family: 'anthropic',
      auth: 'key',
      async handler(rc, ctx) {
        const req = decoded(decodeCountTokensRequest(await readJson(rc.req, deps.bodyLimitBytes)));
        sendJson(rc.res, 200, encodeCountTokensResponse(gw.countTokens(ctx, req)));
      },
    },
  ];
}
