/**
 * The console (issue 16), served by the gateway's own server under /console: static files from the repo's
 * `console/` folder (plain ES modules, CSS and HTML: no build step) with exact content types and a strict CSP,
 * plus sign-in with a phone number and a one-time code (SMS through the SmsSender port), and a read-only view
 * of deployment health for the operator console.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { TokenGridError, sha256Hex, type Clock, type Random } from '../../core/index.ts';
import { createApiKey, type AccountDeps } from '../../accounts/index.ts';
import type { RequestContext } from '../../gateway/index.ts';
import { sendJson } from '../http.ts';
import type { Route } from '../router.ts';
import type { AdminIdentity } from '../shell-deps.ts';
import { parseBody, requireOperator } from '../admin/common.ts';
import { requireManager } from '../self/orders.ts';
import type { BillingRouteDeps } from '../admin/billing-common.ts';

/** Port: sends a text message to a phone number. The default (app.ts) writes it to the log and a file, for development. */
export interface SmsSender {
  send(phone: string, text: string): Promise<void>;
}

/** Port: which account a phone number signs in to. */
export interface PhoneBook {
  accountOf(phone: string): string | undefined;
  link(phone: string, accountId: string): void;
  phonesOf(accountId: string): string[];
}

export interface ConsoleDeps {
  /** The folder with index.html, *.js, *.css. */
  dir: string;
  accounts: AccountDeps;
  clock: Clock;
  random: Random;
  sms: SmsSender;
  phones: PhoneBook;
  bodyLimitBytes: number;
  billing: BillingRouteDeps;
  /** Circuit-breaker state per deployment (routing's DeploymentHealth snapshot) and the model catalog's deployments. */
  deployments: () => { model: string; deployment: string; provider: string; region: string; weight: number; state: string; failures: number }[];
  /** Usage records of every account since a time (for latency and error rate per deployment). */
  recentUsage: (sinceMs: number) => Promise<{ deploymentId: string; latencyMs: number; status: string }[]>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
};

export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function sendFile(res: ServerResponse, body: Buffer, type: string): void {
  res.writeHead(200, {
    'content-type': type,
    'content-length': body.length,
    'content-security-policy': CONSOLE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cache-control': 'no-cache',
  });
  res.end(body);
}

/** One-time codes: 6 digits, valid 5 minutes, 5 attempts; one code a minute and 5 an hour per phone. */
export const OTP = { ttlMs: 5 * 60_000, attempts: 5, resendMs: 60_000, perHour: 5, sessionMs: 12 * 3_600_000 } as const;
const PHONE = /^\+?[0-9]{6,15}$/;

/**
 * One-time codes, shared by sign-in and phone linking: `send` applies the per-number throttle (one a minute, five an
 * hour) and texts a fresh 6-digit code for `scope` (or records the send without a code when `text` is undefined);
 * `verify` checks a code for `scope` (expiry, attempts) and uses it up, or throws otp_invalid.
 */
function otpStore(deps: Pick<ConsoleDeps, 'clock' | 'random' | 'sms'>): {
  send(phone: string, scope: string, text: ((code: string) => string) | undefined): Promise<void>;
  verify(scope: string, code: string): void;
} {
  const codes = new Map<string, { hash: string; expiresAtMs: number; attempts: number }>();
  const sends = new Map<string, number[]>();
  return {
    async send(phone, scope, text) {
      const now = deps.clock.nowMs();
      if (sends.size > 10_000) for (const [p, s] of sends) if (s.every((t) => t <= now - 3_600_000)) sends.delete(p);
      if (codes.size > 10_000) for (const [k, c] of codes) if (c.expiresAtMs <= now) codes.delete(k);
      const sent = (sends.get(phone) ?? []).filter((t) => t > now - 3_600_000);
      if (sent.length > 0 && now - sent[sent.length - 1]! < OTP.resendMs) {
        throw new TokenGridError('otp_throttled', 'A code was sent less than a minute ago; wait before asking for another.', null, {
          'retry-after': String(Math.ceil((OTP.resendMs - (now - sent[sent.length - 1]!)) / 1000)),
        });
      }
      if (sent.length >= OTP.perHour)
        throw new TokenGridError('otp_throttled', `At most ${OTP.perHour} codes an hour are sent to one number; try again later.`, null, {
          'retry-after': '3600',
        });
      sent.push(now);
      sends.set(phone, sent);
      if (text === undefined) {
        codes.delete(scope);
        return;
      }
      const code = String(deps.random.bytes(4).readUInt32BE(0) % 1_000_000).padStart(6, '0');
      codes.set(scope, { hash: sha256Hex(`${scope}:${code}`), expiresAtMs: now + OTP.ttlMs, attempts: 0 });
      await deps.sms.send(phone, text(code));
    },
    verify(scope, code) {
      const c = codes.get(scope);
      if (c === undefined || c.hash === '' || c.expiresAtMs <= deps.clock.nowMs() || c.attempts >= OTP.attempts) {
        throw new TokenGridError('otp_invalid', 'The code is wrong, expired or used up; ask for a new one.', 'code');
      }
      c.attempts++;
      if (sha256Hex(`${scope}:${code.trim()}`) !== c.hash) {
        throw new TokenGridError('otp_invalid', `The code is wrong; ${OTP.attempts - c.attempts} attempt(s) left.`, 'code');
      }
      c.hash = ''; // used
    },
  };
}

export function consoleRoutes(deps: ConsoleDeps): Route<never>[] {
  const routes: Route<never>[] = [];
  const files = new Map<string, { body: Buffer; type: string }>();
  const walk = (dir: string, prefix: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p, `${prefix}${name}/`);
      else if (TYPES[extname(name)] !== undefined) files.set(`${prefix}${name}`, { body: readFileSync(p), type: TYPES[extname(name)]! });
    }
  };
  walk(deps.dir, '');
  const index = files.get('index.html');
  for (const [path, f] of files) {
    routes.push({ method: 'GET', path: `/console/${path}`, family: 'openai', auth: 'none', handler: (rc) => sendFile(rc.res, f.body, f.type) } as Route<never>);
  }
  if (index !== undefined) {
    for (const path of ['/console', '/console/'])
      routes.push({ method: 'GET', path, family: 'openai', auth: 'none', handler: (rc) => sendFile(rc.res, index.body, index.type) } as Route<never>);
  }

  const signInCodes = otpStore(deps);
  // Link codes (PUT /self/phone) are a separate store: a sign-in code never links a number and a link code never signs in.
  // Codes are scoped to (account, phone); the send throttle is per number, whichever account asks.
  const linkCodes = otpStore(deps);
  const phoneBody = z.object({ phone: z.string().max(20) }).strict();
  const verifyBody = z.object({ phone: z.string().max(20), code: z.string().max(10) }).strict();
  const linkBody = z.object({ phone: z.string().max(20), code: z.string().max(10).optional() }).strict();
  const normal = (p: string): string => p.replace(/[\s-]/g, '');
  const validPhone = (raw: string): string => {
    const phone = normal(raw);
    if (!PHONE.test(phone)) throw new TokenGridError('invalid_request', 'phone must be 6 to 15 digits, optionally with a leading +', 'phone');
    return phone;
  };
  const otpRoutes: Route<unknown>[] = [
    {
      method: 'POST',
      path: '/console/api/otp',
      family: 'openai',
      auth: 'none',
      async handler(rc) {
        const phone = validPhone((await parseBody(rc, phoneBody, deps.bodyLimitBytes)).phone);
        // The answer is the same whether or not the number is known (no account enumeration); only known numbers get a text.
        await signInCodes.send(
          phone,
          phone,
          deps.phones.accountOf(phone) === undefined
            ? undefined
            : (code) => `TokenGrid sign-in code: ${code} (valid 5 minutes). 登录验证码：${code}，5分钟内有效。`,
        );
        sendJson(rc.res, 202, { sent: true, expiresInSeconds: OTP.ttlMs / 1000 });
      },
    },
    {
      method: 'POST',
      path: '/console/api/otp/verify',
      family: 'openai',
      auth: 'none',
      async handler(rc) {
        const body = await parseBody(rc, verifyBody, deps.bodyLimitBytes);
        const phone = normal(body.phone);
        signInCodes.verify(phone, body.code);
        const now = deps.clock.nowMs();
        const accountId = deps.phones.accountOf(phone)!;
        const r = await createApiKey(deps.accounts, { accountId, name: `console sign-in ${phone.slice(-4)}`, expiresAtMs: now + OTP.sessionMs });
        if (!r.ok) throw new TokenGridError('unprocessable', r.message);
        sendJson(rc.res, 200, { key: r.value.key, accountId, expiresAt: new Date(now + OTP.sessionMs).toISOString() });
      },
    },
    {
      // Linking proves ownership of the number (issue 12): without `code` a link code is texted to it (202); with the code
      // it links (200). A linked number is a sign-in channel and the account's phone-bill payment channel.
      method: 'PUT',
      path: '/self/phone',
      family: 'openai',
      auth: 'key',
      async handler(rc, ctx) {
        const body = await parseBody(rc, linkBody, deps.bodyLimitBytes);
        const phone = validPhone(body.phone);
        const c = ctx as RequestContext;
        const accountId = c.key.accountId;
        await requireManager(deps.billing, c, 'link a phone number');
        const owner = deps.phones.accountOf(phone);
        if (owner !== undefined && owner !== accountId) throw new TokenGridError('conflict', 'This number signs in to another account.', 'phone');
        if (owner === accountId) {
          sendJson(rc.res, 200, { accountId, phones: deps.phones.phonesOf(accountId) });
          return;
        }
        const scope = `${accountId}\u0000${phone}`;
        if (body.code === undefined) {
          await linkCodes.send(
            phone,
            scope,
            (code) =>
              `TokenGrid link code: ${code}. Enter it to link this number to TokenGrid account ${accountId} (valid 5 minutes); ignore it if you did not ask. ` +
              `绑定验证码：${code}，用于将此号码绑定到 TokenGrid 账户 ${accountId}，5分钟内有效；如非本人操作请忽略。`,
          );
          sendJson(rc.res, 202, { sent: true, expiresInSeconds: OTP.ttlMs / 1000 });
          return;
        }
        linkCodes.verify(scope, body.code);
        deps.phones.link(phone, accountId);
        sendJson(rc.res, 200, { accountId, phones: deps.phones.phonesOf(accountId) });
      },
    } as Route<RequestContext> as Route<unknown>,
    {
      method: 'GET',
      path: '/console/api/whoami',
      family: 'admin',
      auth: 'admin',
      handler(rc, admin) {
        const a = admin as AdminIdentity;
        sendJson(rc.res, 200, { id: a.id, role: a.role, accountIds: a.accountIds });
      },
    },
    {
      method: 'GET',
      path: '/console/api/deployments',
      family: 'admin',
      auth: 'admin',
      async handler(rc, admin) {
        // The permission matrix (api/admin/permissions.ts) admits operators and finance; enterprise admins never.
        if ((admin as AdminIdentity).role === 'enterprise') requireOperator(admin as AdminIdentity);
        const windowMs = 15 * 60_000;
        const recent = await deps.recentUsage(deps.clock.nowMs() - windowMs);
        const data = deps.deployments().map((d) => {
          const mine = recent.filter((u) => u.deploymentId === d.deployment);
          const lat = mine.map((u) => u.latencyMs).sort((a, b) => a - b);
          const q = (p: number): number | null => (lat.length === 0 ? null : lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!);
          const errors = mine.filter((u) => u.status === 'upstream_error' || u.status === 'timeout').length;
          return {
            ...d,
            requests: mine.length,
            latencyMsP50: q(0.5),
            latencyMsP95: q(0.95),
            errorRate: mine.length === 0 ? null : Math.round((errors * 1000) / mine.length) / 1000,
          };
        });
        sendJson(rc.res, 200, { windowMinutes: windowMs / 60_000, data });
      },
    },
  ];
  return [...routes, ...(otpRoutes as Route<never>[])];
}
