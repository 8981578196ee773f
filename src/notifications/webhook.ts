/**
 * Webhook delivery of charging events (threshold_50/80/100, member_cap_80/100). Events are written by the
 * charging store in the same transaction as the charge that caused them (an outbox), so none is lost; this
 * deliverer POSTs each pending event to one configured URL, marks it delivered on a 2xx, and otherwise retries
 * with exponential backoff until maxAttempts, then gives up (state 'failed', still readable in the event log).
 * Delivery is at-least-once: a receiver deduplicates by the `webhook-id` header (the event id, also sent as
 * `x-tokengrid-event-id`). Each request is signed with Standard Webhooks (src/core/webhook-signature.ts):
 * `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`.
 */
import { request, type Dispatcher } from 'undici';
import { signWebhookMessage, verifyWebhook, webhookHeaders, webhookKey, type Clock } from '../core/index.ts';
import type { StoredChargingEvent } from '../charging/index.ts';

/** The part of the ChargingStore this module needs (declared by its user, implemented by store/*). */
export interface EventOutbox {
  claimPendingEvents(nowMs: number, limit: number, leaseMs: number): Promise<StoredChargingEvent[]>;
  markEventDelivered(eventId: string, atMs: number): Promise<void>;
  markEventAttemptFailed(eventId: string, attempts: number, nextAttemptAtMs: number | null): Promise<void>;
}

/** Timers are a port so tests drive the polling loop by hand. */
export interface Timer {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimer: Timer = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface WebhookConfig {
  url: string;
  /** HMAC key for the signature header: required (at least 16 characters); the deliverer refuses to run unsigned. */
  secret: string;
  attemptsMax: number;
  backoffMsBase: number;
  backoffMsMax: number;
  batchSize: number;
  /** Time allowed for response headers and for the body. */
  timeoutMs: number;
  /** A claimed event is not claimed again (by this or another process) for this long. */
  leaseMs: number;
  pollIntervalMs: number;
}

export const defaultWebhookConfig: Omit<WebhookConfig, 'url' | 'secret'> = {
  attemptsMax: 8,
  backoffMsBase: 5_000,
  backoffMsMax: 3_600_000,
  batchSize: 50,
  timeoutMs: 10_000,
  leaseMs: 60_000,
  pollIntervalMs: 5_000,
};

export interface WebhookDeps {
  outbox: EventOutbox;
  clock: Clock;
  timer?: Timer;
  dispatcher?: Dispatcher;
  config: Partial<WebhookConfig> & { url: string; secret: string };
  /** Store failures inside the polling loop (the loop keeps going); the app passes its logger here. */
  onError?: (err: unknown) => void;
}

export interface WebhookDeliverer {
  /** Deliver every due event once (one batch). */
  deliverDue(): Promise<{ delivered: number; failed: number }>;
  start(): void;
  /** Stop polling and wait for a run in progress. */
  stop(): Promise<void>;
}

/** Delay before attempt n+1 after n failed attempts: base * 2^(n-1), capped (deterministic, no jitter). */
export function backoffMs(attemptsFailed: number, base: number, max: number): number {
  return Math.min(max, base * 2 ** Math.max(0, attemptsFailed - 1));
}

/** The Standard Webhooks signature (`v1,<base64>`) of one message; kept under its old name for callers. */
export function signPayload(secret: string, id: string, timestampS: number, body: string): string {
  return signWebhookMessage(secret, id, timestampS, body);
}

/** Receivers written in TypeScript can verify with this (or with the official `standardwebhooks` library). */
export { verifyWebhook };

/** The shortest webhook secret accepted: a receiver must be able to tell our requests from forged ones. */
export const WEBHOOK_SECRET_MIN_LENGTH = 16;

export function createWebhookDeliverer(deps: WebhookDeps): WebhookDeliverer {
  const cfg: WebhookConfig = { ...defaultWebhookConfig, ...deps.config };
  if (typeof cfg.secret !== 'string' || cfg.secret.length < WEBHOOK_SECRET_MIN_LENGTH) {
    throw new Error(
      `The webhook to ${cfg.url} needs a signing secret of at least ${WEBHOOK_SECRET_MIN_LENGTH} characters; TokenGrid does not send unsigned webhooks.`,
    );
  }
  const key = webhookKey(cfg.secret);
  const timer = deps.timer ?? systemTimer;
  let handle: unknown = null;
  let running: Promise<unknown> | null = null;
  let stopped = true;

  async function post(e: StoredChargingEvent): Promise<boolean> {
    const body = JSON.stringify({
      id: e.id,
      type: e.type,
      accountId: e.accountId,
      subjectId: e.subjectId,
      data: e.data,
      atMs: e.atMs,
      attempt: e.attempts + 1,
    });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-tokengrid-event-id': e.id,
      ...webhookHeaders(key, e.id, deps.clock.nowMs(), body),
    };
    try {
      const res = await request(cfg.url, {
        method: 'POST',
        headers,
        body,
        headersTimeout: cfg.timeoutMs,
        bodyTimeout: cfg.timeoutMs,
        ...(deps.dispatcher === undefined ? {} : { dispatcher: deps.dispatcher }),
      });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 300;
    } catch {
      return false; // connection refused, reset, timeout: all retried the same way
    }
  }

  async function deliverDue(): Promise<{ delivered: number; failed: number }> {
    const events = await deps.outbox.claimPendingEvents(deps.clock.nowMs(), cfg.batchSize, cfg.leaseMs);
    let delivered = 0;
    let failed = 0;
    for (const e of events) {
      if (await post(e)) {
        await deps.outbox.markEventDelivered(e.id, deps.clock.nowMs());
        delivered++;
        continue;
      }
      failed++;
      const attempts = e.attempts + 1;
      const next = attempts >= cfg.attemptsMax ? null : deps.clock.nowMs() + backoffMs(attempts, cfg.backoffMsBase, cfg.backoffMsMax);
      await deps.outbox.markEventAttemptFailed(e.id, attempts, next);
    }
    return { delivered, failed };
  }

  function schedule(): void {
    if (stopped) return;
    handle = timer.setTimeout(() => {
      running = deliverDue()
        .catch((err: unknown) => deps.onError?.(err))
        .finally(() => {
          running = null;
          schedule();
        });
    }, cfg.pollIntervalMs);
  }

  return {
    deliverDue,
    start() {
      if (!stopped) return;
      stopped = false;
      schedule();
    },
    async stop() {
      stopped = true;
      if (handle !== null) timer.clearTimeout(handle);
      handle = null;
      if (running !== null) await running;
    },
  };
}
