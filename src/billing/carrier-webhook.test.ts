import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, verifyWebhook } from '../core/index.ts';
import { webhookChannel } from './carrier.ts';

test('the carrier webhook is signed with Standard Webhooks, the payment id as webhook-id and idempotency key', async () => {
  const T = Date.UTC(2026, 5, 1);
  const secret = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
  const sent: { headers: Record<string, string>; body: string }[] = [];
  const ch = webhookChannel({
    url: 'http://carrier.test/charges',
    secret,
    clock: new ManualClock(T),
    post: async (_url, headers, body) => {
      sent.push({ headers, body });
      return { status: 200, body: '{"reference":"ref-1"}' };
    },
  });
  const [r] = await ch.submit([
    { paymentId: 'pay_1', billId: 'bill_1', accountId: 'acct_1', period: '2026-05', amountMinor: 40_00, currency: 'EUR', description: 'd' },
  ]);
  assert.deepEqual(r, { paymentId: 'pay_1', ok: true, reference: 'ref-1', error: null });
  const { headers, body } = sent[0]!;
  assert.equal(headers['webhook-id'], 'pay_1');
  assert.equal(headers['idempotency-key'], 'pay_1');
  assert.deepEqual(verifyWebhook(secret, headers, body, T), { ok: true });
  assert.deepEqual(verifyWebhook(secret, headers, body.replace('40.00', '4.00'), T), { ok: false, reason: 'bad_signature' });
  assert.equal(headers['x-tokengrid-signature'], undefined, 'one scheme only');
});
