import { TokenGridError } from '../../core/index.ts';
import type { Gateway, RequestContext } from '../../gateway/index.ts';
import {
  decodeChatRequest,
  decodeCompletionRequest,
  decodeEmbeddingRequest,
  encodeChatResponseJson,
  encodeCompletionResponse,
  encodeEmbeddingResponse,
  OpenAIChatStreamEncoder,
  OpenAICompletionStreamEncoder,
  openaiErrorBody,
} from '../../wire/openai/index.ts';
import { sseFrame } from '../../wire/index.ts';
import { readJson, sendJson, sendText } from '../http.ts';
import type { Route, RouteContext } from '../router.ts';
import { sseSink } from '../sink.ts';
import type { ShellDeps } from '../shell-deps.ts';
import { responsesRoutes } from './responses.ts';

function decoded<T>(r: { ok: true; value: T } | { ok: false; code: string; message: string; details?: Record<string, unknown> }): T {
  if (r.ok) return r.value;
  throw new TokenGridError('invalid_request', r.message, typeof r.details?.param === 'string' ? r.details.param : null);
}

/** A completed request's answer, replayed for the same Idempotency-Key (nothing runs, nothing is charged). */
function replay(rc: RouteContext, a: { status: number; body: string; contentType: string }): void {
  rc.res.setHeader('idempotent-replayed', 'true');
  sendText(rc.res, a.status, a.body, a.contentType);
}

const errorFrame = (code: Parameters<typeof openaiErrorBody>[0], message: string): string => sseFrame(JSON.stringify(openaiErrorBody(code, message)));

export function openaiRoutes(deps: ShellDeps): Route<RequestContext>[] {
  const gw: Gateway = deps.gateway;
  const createdS = (): number => Math.floor(deps.clock.nowMs() / 1000);
  return [
    {
      method: 'POST',
      path: '/v1/chat/completions',
      family: 'openai',
      auth: 'key',
      async handler(rc: RouteContext, ctx: RequestContext) {
        const body = await readJson(rc.req, deps.bodyLimitBytes);
        const req = decoded(decodeChatRequest(body));
        const ticket = await gw.idempotency.begin(ctx.key.id, '/v1/chat/completions', rc.req.headers['idempotency-key'], body);
        if (ticket?.replay) return replay(rc, ticket.replay);
        try {
          if (!req.stream) {
            const { response, model } = await gw.chat(ctx, req);
            // The body's JSON text is written directly (the same text JSON.stringify(encodeChatResponse(...)) gives).
            // `model` names the catalog model actually used (after aliases and the package's model mapping).
            const text = encodeChatResponseJson(response, model.id, `chatcmpl-${ctx.requestId}`);
            if (ticket) await ticket.complete({ status: 200, body: text, contentType: 'application/json' });
            sendText(rc.res, 200, text, 'application/json');
            return;
          }
          const encoder = new OpenAIChatStreamEncoder({
            id: `chatcmpl-${ctx.requestId}`,
            model: gw.resolve(ctx, req.model, req).id,
            createdS: createdS(),
            includeUsage: req.includeUsage,
          });
          await gw.chatStream(ctx, req, sseSink(rc.res, encoder, errorFrame), deps.streamOptions);
          if (ticket) await ticket.complete(undefined);
        } catch (e) {
          if (ticket) await ticket.abandon();
          throw e;
        }
      },
    },
    {
      method: 'POST',
      path: '/v1/completions',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const body = await readJson(rc.req, deps.bodyLimitBytes);
        const req = decoded(decodeCompletionRequest(body));
        const ticket = await gw.idempotency.begin(ctx.key.id, '/v1/completions', rc.req.headers['idempotency-key'], body);
        if (ticket?.replay) return replay(rc, ticket.replay);
        try {
          if (!req.stream) {
            const { response } = await gw.completion(ctx, req);
            const text = JSON.stringify(encodeCompletionResponse(response, req.model, `cmpl-${ctx.requestId}`));
            if (ticket) await ticket.complete({ status: 200, body: text, contentType: 'application/json' });
            sendText(rc.res, 200, text, 'application/json');
            return;
          }
          const encoder = new OpenAICompletionStreamEncoder({
            id: `cmpl-${ctx.requestId}`,
            model: req.model,
            createdS: createdS(),
            includeUsage: req.includeUsage,
          });
          await gw.completionStream(ctx, req, sseSink(rc.res, encoder, errorFrame), deps.streamOptions);
          if (ticket) await ticket.complete(undefined);
        } catch (e) {
          if (ticket) await ticket.abandon();
          throw e;
        }
      },
    },
    {
      method: 'POST',
      path: '/v1/embeddings',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const req = decoded(decodeEmbeddingRequest(await readJson(rc.req, deps.bodyLimitBytes)));
        const { response } = await gw.embeddings(ctx, req);
        sendJson(rc.res, 200, encodeEmbeddingResponse(response, req.model, req.encodingFormat ?? 'float'));
      },
    },
    {
      method: 'GET',
      path: '/v1/models',
      family: 'openai',
      auth: 'key',
      handler(rc, ctx) {
        const data = gw.listModels(ctx).map((m) => ({ id: m.id, object: 'model', created: m.createdS, owned_by: m.ownedBy }));
        sendJson(rc.res, 200, { object: 'list', data });
      },
    },
    {
      method: 'GET',
      path: '/v1/models/:id',
      family: 'openai',
      auth: 'key',
      handler(rc, ctx) {
        const m = gw.getModel(ctx, rc.params.id!);
        sendJson(rc.res, 200, { id: m.id, object: 'model', created: m.createdS, owned_by: m.ownedBy });
      },
    },
    ...responsesRoutes(deps, deps.responses),
  ];
}
