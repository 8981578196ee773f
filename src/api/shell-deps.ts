import type { Clock, IdGenerator } from '../core/index.ts';
import type { AuthThrottle } from './auth-throttle.ts';
import type { Gateway, KeySnapshot, StreamOptions } from '../gateway/index.ts';
import type { ResponseStore } from '../wire/openai/index.ts';

export interface ShellLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
  /** pino's: lets the shell skip building a log line nobody will write. */
  isLevelEnabled?(level: string): boolean;
}

/** What the HTTP shell needs; app.ts builds it. */
export interface ShellDeps {
  gateway: Gateway;
  keys: KeySnapshot;
  clock: Clock;
  ids: IdGenerator;
  now: () => number;
  bodyLimitBytes: number;
  streamOptions: StreamOptions;
  log: ShellLogger;
  /** Checks the admin key (constant-time); returns the admin's identity or undefined. */
  authenticateAdmin: (token: string | undefined) => AdminIdentity | undefined;
  metricsText: () => Promise<{ contentType: string; body: string }>;
  isReady: () => boolean;
  isDraining: () => boolean;
  onRequestDone?: (route: string, status: number, latencyS: number) => void;
  /** Failed authentications per source address (429 with Retry-After past the limit); see auth-throttle.ts. */
  authThrottle?: AuthThrottle;
  /** Called on every failed key or admin authentication (throttle count, metric, log, audit). */
  onAuthFailed?: (f: AuthFailure) => void;
  /** When set, GET /metrics requires `Authorization: Bearer <token>` (TOKENGRID_METRICS_TOKEN). */
  metricsToken?: string;
  /** A request matched no route (counted by method in /metrics). */
  onUnknownRoute?: (method: string) => void;
  /** Stored responses for POST/GET /v1/responses (without it nothing is stored and previous_response_id finds nothing). */
  responses?: ResponsesDeps;
}

export interface AuthFailure {
  kind: 'key' | 'admin';
  source: string;
  requestId: string;
  method: string;
  path: string;
}

export type AdminRole = 'operator' | 'enterprise' | 'finance';

export interface AdminIdentity {
  id: string;
  role: AdminRole;
  /** For enterprise admins: the accounts (and their sub-accounts) they may manage. */
  accountIds: string[] | null;
}

/** The Responses API's stored responses (`POST /v1/responses` with `store`, `GET /v1/responses/{id}`). */
export interface ResponsesDeps {
  store: ResponseStore;
  ttlMs: number;
}
