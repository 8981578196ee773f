import { TokenGridError } from '../../core/index.ts';
import type { Gateway, RequestContext } from '../../gateway/index.ts';
import {
  decodeResponsesRequest,
  encodeResponsesResponse,
  itemReferenceIds,
  MAX_INPUT_ITEMS,
  responsesItemsToMessages,
  ResponsesStreamEncoder,
  type ResponseEnvelope,
  type ResponsesRequest,
} from '../../wire/openai/index.ts';
import type { ChatRequest } from '../../wire/index.ts';
import { readJson, sendJson } from '../http.ts';
import type { Route, RouteContext } from '../router.ts';
import { sseSink } from '../sink.ts';
import type { ResponsesDeps, ShellDeps } from '../shell-deps.ts';

/** How long a stored response stays retrievable unless configured otherwise (OpenAI keeps them 30 days). */
export const DEFAULT_RESPONSE_TTL_MS = 30 * 86_400_000;

/** What the Responses routes need beyond the shell's deps. */
function decoded<T>(r: { ok: true; value: T } | { ok: false; code: string; message: string; details?: Record<string, unknown> }): T {
  if (r.ok) return r.value;
  throw new TokenGridError('invalid_request', r.message, typeof r.details?.param === 'string' ? r.details.param : null);
}

function notFound(id: string): TokenGridError {
  return new TokenGridError('not_found', `Response with id '${id}' not found.`);
}

/**
 * POST /v1/responses, GET and DELETE /v1/responses/{id} (+ input_items, input_tokens): the Responses API, translated to a canonical chat
 * request and served through the gateway's own chat entry points (gw.chat, gw.chatStream), so admission,
 * reservation, retries, metering and settlement are exactly those of /v1/chat/completions, for every upstream
 * dialect. Responses are stored per account (`store`, default true) for `previous_response_id` and GET.
 */
export function responsesRoutes(deps: ShellDeps, rdeps: ResponsesDeps | undefined): Route<RequestContext>[] {
  const gw: Gateway = deps.gateway;
  const nowS = (): number => Math.floor(deps.clock.nowMs() / 1000);

  /** The chat request with the previous responses' conversation between the instructions and the new input. */
  async function withHistory(ctx: RequestContext, req: ResponsesRequest): Promise<{ chat: ChatRequest; history: Record<string, unknown>[] }> {
    if (req.previousResponseId === null) return { chat: req.chat, history: [] };
    const prev = rdeps === undefined ? undefined : await rdeps.store.get(ctx.key.accountId, req.previousResponseId, deps.clock.nowMs());
    if (prev === undefined)
      throw new TokenGridError('invalid_request', `Previous response with id '${req.previousResponseId}' not found.`, 'previous_response_id');
    const past = decoded(responsesItemsToMessages(prev.items));
    const lead = req.instructions !== null && req.instructions !== '' ? 1 : 0;
    const messages = [...req.chat.messages.slice(0, lead), ...past, ...req.chat.messages.slice(lead)];
    return { chat: { ...req.chat, messages }, history: prev.items };
  }

  /**
   * Items named by `item_reference`, found in this account's stored responses. Output item ids are derived from
   * their response's id (`msg_<base>`, `fc_<base>_<n>`, …: see encode-responses.ts), so each is one lookup.
   */
  async function referencedItems(ctx: RequestContext, ids: string[]): Promise<Map<string, Record<string, unknown>>> {
    const found = new Map<string, Record<string, unknown>>();
    // Past the item limit the decoder refuses the request: look nothing up for it.
    if (ids.length === 0 || ids.length > MAX_INPUT_ITEMS || rdeps === undefined) return found;
    const responses = new Map<string, Record<string, unknown>[] | undefined>();
    for (const id of ids) {
      const under = id.indexOf('_');
      if (under < 0) continue;
      const rest = id.slice(under + 1);
      const candidates = [`resp_${rest}`, `resp_${rest.replace(/_\d+$/, '')}`];
      for (const rid of candidates) {
        if (!responses.has(rid)) {
          const r = await rdeps.store.get(ctx.key.accountId, rid, deps.clock.nowMs());
          responses.set(rid, r === undefined ? undefined : (r.response['output'] as Record<string, unknown>[] | undefined));
        }
        const item = responses.get(rid)?.find((it) => it['id'] === id);
        if (item !== undefined) {
          found.set(id, item);
          break;
        }
      }
    }
    return found;
  }

  async function persist(
    ctx: RequestContext,
    req: ResponsesRequest,
    history: Record<string, unknown>[],
    response: Record<string, unknown> | undefined,
  ): Promise<void> {
    if (!req.store || rdeps === undefined || response === undefined) return;
    const now = deps.clock.nowMs();
    const output = Array.isArray(response['output']) ? (response['output'] as Record<string, unknown>[]) : [];
    try {
      await rdeps.store.put({
        id: response['id'] as string,
        accountId: ctx.key.accountId,
        createdAtMs: now,
        expiresAtMs: now + rdeps.ttlMs,
        response,
        items: [...history, ...req.inputItems, ...output],
      });
    } catch (e) {
      // The answer was delivered and charged; only its later retrieval is lost.
      deps.log.error({ err: e, requestId: ctx.requestId }, 'storing a response failed');
    }
  }

  return [
    {
      method: 'POST',
      path: '/v1/responses',
      family: 'openai',
      auth: 'key',
      async handler(rc: RouteContext, ctx: RequestContext) {
        const body = await readJson(rc.req, deps.bodyLimitBytes);
        const req = decoded(decodeResponsesRequest(body, await referencedItems(ctx, itemReferenceIds(body))));
        const { chat, history } = await withHistory(ctx, req);
        // `model` names the catalog model actually used (after aliases and the package's model mapping), as
        // /v1/chat/completions and /v1/messages do; resolving first also rejects an unknown model before any stream.
        const env: ResponseEnvelope = {
          id: `resp_${ctx.requestId.replace(/^req_/, '')}`,
          createdAtS: nowS(),
          model: gw.resolve(ctx, chat.model, chat).id,
          req,
        };
        const headers =
          req.ignoredTools.length === 0
            ? undefined
            : {
                'x-tokengrid-warning': `hosted tools ignored (no upstream behind this gateway runs them): ${req.ignoredTools.join(', ')}`,
              };
        if (!chat.stream) {
          const { response, model } = await gw.chat(ctx, chat);
          const body = encodeResponsesResponse({ ...env, model: model.id }, response, nowS());
          await persist(ctx, req, history, body);
          sendJson(rc.res, 200, body, headers);
          return;
        }
        const encoder = new ResponsesStreamEncoder(env, nowS);
        await gw.chatStream(
          ctx,
          chat,
          sseSink(rc.res, encoder, (code, message) => encoder.fail(code, message), headers),
          deps.streamOptions,
        );
        await persist(ctx, req, history, encoder.finalResponse);
      },
    },
    {
      // responses.inputTokens.count: the gateway's estimate of the input (with any previous_response_id history),
      // no upstream call and no charge, like Anthropic's count_tokens.
      method: 'POST',
      path: '/v1/responses/input_tokens',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const body = await readJson(rc.req, deps.bodyLimitBytes);
        const req = decoded(decodeResponsesRequest(body, await referencedItems(ctx, itemReferenceIds(body))));
        const { chat } = await withHistory(ctx, req);
        sendJson(rc.res, 200, { object: 'response.input_tokens', input_tokens: gw.countTokens(ctx, chat) });
      },
    },
    {
      method: 'GET',
      path: '/v1/responses/:id',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const id = rc.params.id!;
        const found = rdeps === undefined ? undefined : await rdeps.store.get(ctx.key.accountId, id, deps.clock.nowMs());
        if (found === undefined) throw notFound(id);
        sendJson(rc.res, 200, found.response);
      },
    },
    {
      // The items that were the model's input for this response (the previous responses' conversation and this
      // request's input), OpenAI's list shape: order (desc by default), limit (1-100, default 20), after.
      method: 'GET',
      path: '/v1/responses/:id/input_items',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const id = rc.params.id!;
        const found = rdeps === undefined ? undefined : await rdeps.store.get(ctx.key.accountId, id, deps.clock.nowMs());
        if (found === undefined) throw notFound(id);
        const order = rc.query.get('order') ?? 'desc';
        if (order !== 'asc' && order !== 'desc')
          throw new TokenGridError('invalid_request', `Invalid value for 'order': expected 'asc' or 'desc', got '${order}'.`, 'order');
        const limitText = rc.query.get('limit') ?? '20';
        const limit = Number(limitText);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100)
          throw new TokenGridError('invalid_request', `Invalid value for 'limit': expected an integer from 1 to 100, got '${limitText}'.`, 'limit');
        const outputCount = Array.isArray(found.response['output']) ? found.response['output'].length : 0;
        const base = id.startsWith('resp_') ? id.slice(5) : id;
        let items = found.items
          .slice(0, found.items.length - outputCount)
          .map((it, i) => (typeof it['id'] === 'string' ? it : { id: `item_${base}_${i}`, ...it }));
        if (order === 'desc') items = items.reverse();
        const after = rc.query.get('after');
        if (after !== null) {
          const at = items.findIndex((it) => it['id'] === after);
          if (at < 0) throw new TokenGridError('invalid_request', `Invalid value for 'after': no input item '${after}' in this response.`, 'after');
          items = items.slice(at + 1);
        }
        const data = items.slice(0, limit);
        sendJson(rc.res, 200, {
          object: 'list',
          data,
          first_id: data[0]?.['id'] ?? null,
          last_id: data[data.length - 1]?.['id'] ?? null,
          has_more: items.length > limit,
        });
      },
    },
    {
      method: 'DELETE',
      path: '/v1/responses/:id',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const id = rc.params.id!;
        const deleted = rdeps !== undefined && (await rdeps.store.delete(ctx.key.accountId, id));
        if (!deleted) throw notFound(id);
        sendJson(rc.res, 200, { id, object: 'response', deleted: true });
      },
    },
  ];
}
