/**
 * "Charge to phone bill": at each bill run the amount a bill puts on the phone bill becomes a pending Payment,
 * handed to the carrier's billing system by a CarrierChannel. Two adapters ship: a file export (one CSV per
 * delivery, for batch pick-up) and a webhook (one signed POST per charge, the payment id as idempotency key).
 * The I/O itself (writing a file, an HTTP POST) is injected by the composition root.
 */
import { webhookHeaders, webhookKey, type Clock } from '../core/index.ts';

export interface CarrierCharge {
  paymentId: string;
  billId: string;
  accountId: string;
  period: string;
  amountMinor: number;
  currency: string;
  description: string;
}

export interface CarrierResult {
  paymentId: string;
  ok: boolean;
  reference: string | null;
  error: string | null;
}

export interface CarrierChannel {
  name: string;
  submit(charges: CarrierCharge[]): Promise<CarrierResult[]>;
}

const amount = (minor: number): string => `${minor < 0 ? '-' : ''}${Math.floor(Math.abs(minor) / 100)}.${String(Math.abs(minor) % 100).padStart(2, '0')}`;
const csvCell = (v: string): string => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

export function carrierCsv(charges: CarrierCharge[]): string {
  const rows = ['payment_id,bill_id,account_id,period,amount,currency,description'];
  for (const c of charges) rows.push([c.paymentId, c.billId, c.accountId, c.period, amount(c.amountMinor), c.currency, c.description].map(csvCell).join(','));
  return `${rows.join('\n')}\n`;
}

/** Writes one CSV file per delivery; the carrier picks files up. The file name is each payment's reference. */
export function fileExportChannel(o: { write: (fileName: string, text: string) => Promise<void>; clock: Clock }): CarrierChannel {
  return {
    name: 'file-export',
    async submit(charges) {
      if (charges.length === 0) return [];
      const stamp = new Date(o.clock.nowMs())
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, 'Z');
      const fileName = `carrier-charges-${charges[0]!.period}-${stamp}-${charges[0]!.paymentId}.csv`;
      try {
        await o.write(fileName, carrierCsv(charges));
        return charges.map((c) => ({ paymentId: c.paymentId, ok: true, reference: fileName, error: null }));
      } catch (e) {
        return charges.map((c) => ({ paymentId: c.paymentId, ok: false, reference: null, error: `write ${fileName}: ${(e as Error).message}` }));
      }
    },
  };
}

export type HttpPost = (url: string, headers: Record<string, string>, body: string) => Promise<{ status: number; body: string }>;

/** Signed with Standard Webhooks (src/core/webhook-signature.ts); the payment id is the `webhook-id`. */
export { signWebhookMessage as signWebhook } from '../core/index.ts';

/** POSTs each charge as JSON; a 2xx answer is accepted, its JSON `reference` (if any) kept. */
export function webhookChannel(o: { url: string; secret: string; post: HttpPost; clock: Clock }): CarrierChannel {
  const key = webhookKey(o.secret);
  return {
    name: 'webhook',
    async submit(charges) {
      const out: CarrierResult[] = [];
      for (const c of charges) {
        const body = JSON.stringify({ type: 'carrier.charge', ...c, amount: amount(c.amountMinor) });
        const headers = {
          'content-type': 'application/json',
          'idempotency-key': c.paymentId,
          ...webhookHeaders(key, c.paymentId, o.clock.nowMs(), body),
        };
        try {
          const r = await o.post(o.url, headers, body);
          if (r.status >= 200 && r.status < 300) {
            let reference: string | null = null;
            try {
              reference = (JSON.parse(r.body) as { reference?: string }).reference ?? null;
            } catch {
              /* not JSON: fine */
            }
            out.push({ paymentId: c.paymentId, ok: true, reference: reference ?? `http ${r.status}`, error: null });
          } else {
            out.push({ paymentId: c.paymentId, ok: false, reference: null, error: `carrier answered ${r.status}` });
          }
        } catch (e) {
          out.push({ paymentId: c.paymentId, ok: false, reference: null, error: (e as Error).message });
        }
      }
      return out;
    },
  };
}
