import { ApiError, CliError } from './errors.ts';

/** A small admin API client over global fetch: JSON in, JSON out, every failure a CliError with a plain message. */
export interface ClientOptions {
  baseUrl: string;
  adminKey: string;
  /** Where the admin key came from, named in the hint of a 401 ("--admin-key", "data/admin-key", ...). */
  adminKeySource: string;
  fetch: typeof fetch;
  timeoutMs: number;
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  /** Sent as Idempotency-Key so a retried create cannot happen twice. */
  idempotencyKey?: string;
  timeoutMs?: number;
}

export type Query = Record<string, string | undefined>;

export class AdminClient {
  readonly #opts: ClientOptions;

  constructor(opts: ClientOptions) {
    this.#opts = { ...opts, baseUrl: opts.baseUrl.replace(/\/+$/, '') };
  }

  get baseUrl(): string {
    return this.#opts.baseUrl;
  }

  get(path: string, opts: RequestOptions = {}): Promise<unknown> {
    return this.#request('GET', path, undefined, opts);
  }

  post(path: string, body: unknown, opts: RequestOptions = {}): Promise<unknown> {
    return this.#request('POST', path, body, opts);
  }

  async #request(method: string, path: string, body: unknown, opts: RequestOptions): Promise<unknown> {
    const url = this.#opts.baseUrl + path + queryString(opts.query);
    const headers: Record<string, string> = { authorization: `Bearer ${this.#opts.adminKey}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    const timeoutMs = opts.timeoutMs ?? this.#opts.timeoutMs;
    let res: Response;
    let text: string;
    try {
      res = await this.#opts.fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await res.text();
    } catch (e) {
      throw networkError(e, this.#opts.baseUrl, timeoutMs);
    }
    if (!res.ok) throw this.#apiError(res, text, method, path);
    return parseJson(text, res.status);
  }

  #apiError(res: Response, text: string, method: string, path: string): ApiError {
    const requestId = res.headers.get('x-request-id') ?? undefined;
    const err = errorBody(text);
    let message = err?.message ?? `HTTP ${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`;
    if (res.status === 401) message += ` (admin key from ${this.#opts.adminKeySource}; see tokengrid --help)`;
    if (res.status === 404 && message.startsWith('Unknown route')) {
      message = `The server at ${this.#opts.baseUrl} has no ${method} ${path.split('?')[0]} (an older TokenGrid, or --url points elsewhere).`;
    }
    if (res.status >= 500 && requestId) message += ` (request id ${requestId})`;
    return new ApiError(message, res.status, err?.code, requestId);
  }
}

function queryString(query: Query | undefined): string {
  if (!query) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The admin family's error body is OpenAI-shaped: { error: { message, code, type, param } }. */
function errorBody(text: string): { message: string; code: string | undefined } | undefined {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown; code?: unknown } };
    const message = body.error?.message;
    if (typeof message !== 'string') return undefined;
    return { message, code: typeof body.error?.code === 'string' ? body.error.code : undefined };
  } catch {
    return undefined;
  }
}

function parseJson(text: string, status: number): unknown {
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`The server answered HTTP ${status} with something that is not JSON; is --url pointing at a TokenGrid server?`);
  }
}

function networkError(e: unknown, baseUrl: string, timeoutMs: number): CliError {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
    return new CliError(`No answer from ${baseUrl} within ${Math.round(timeoutMs / 1000)} s (raise it with --timeout).`);
  }
  const cause = e instanceof Error ? (e.cause as { code?: string; message?: string } | undefined) : undefined;
  const why = cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
  return new CliError(`Cannot reach TokenGrid at ${baseUrl} (${why}). Is the server running? Set the address with --url or TOKENGRID_URL.`);
}
