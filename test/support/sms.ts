/**
 * Reading texts the development SMS sender wrote (<dataDir>/sms-outbox.log, one "ISO-time phone text" line each),
 * and linking a phone number to an account the way a user does: PUT /self/phone, then again with the texted code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function smsOutbox(dataDir: string): string {
  const file = join(dataDir, 'sms-outbox.log');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/** The last code of `kind` ('sign-in' or 'link') texted to `phone`. */
export function lastSmsCode(dataDir: string, phone: string, kind: 'sign-in' | 'link'): string {
  const re = new RegExp(`^\\S+ ${phone.replace('+', '\\+')} TokenGrid ${kind} code: (\\d{6})`, 'gm');
  const hit = [...smsOutbox(dataDir).matchAll(re)].at(-1);
  if (hit === undefined) throw new Error(`no ${kind} code was texted to ${phone}`);
  return hit[1]!;
}

/** Link `phone` to the account of `key` in two steps; returns the final response (200 with { accountId, phones } when linked). */
export async function linkPhone(url: string, dataDir: string, key: string, phone: string): Promise<{ status: number; body: any }> {
  const put = async (body: unknown): Promise<{ status: number; body: any }> => {
    const r = await fetch(`${url}/self/phone`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined };
  };
  const sent = await put({ phone });
  if (sent.status !== 202) return sent;
  return put({ phone, code: lastSmsCode(dataDir, phone.replace(/[\s-]/g, ''), 'link') });
}
