import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import { formatWebhookSecret, signWebhookMessage, verifyWebhook, webhookHeaders, webhookKey } from './webhook-signature.ts';

// The test vector of the Standard Webhooks reference library (libraries/javascript/src/webhook.test.ts, "sign function works").
const SPEC = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestampS: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

describe('Standard Webhooks signing', () => {
  test('signs the spec test vector to the spec signature', () => {
    assert.equal(signWebhookMessage(SPEC.secret, SPEC.id, SPEC.timestampS, SPEC.body), SPEC.signature);
  });

  test('verifies the spec test vector within the 5-minute window and refuses it outside', () => {
    const headers = { 'webhook-id': SPEC.id, 'webhook-timestamp': String(SPEC.timestampS), 'webhook-signature': SPEC.signature };
    assert.deepEqual(verifyWebhook(SPEC.secret, headers, SPEC.body, SPEC.timestampS * 1000 + 299_000), { ok: true });
    assert.deepEqual(verifyWebhook(SPEC.secret, headers, SPEC.body, SPEC.timestampS * 1000 + 301_000), { ok: false, reason: 'too_old' });
    assert.deepEqual(verifyWebhook(SPEC.secret, headers, SPEC.body, SPEC.timestampS * 1000 - 301_000), { ok: false, reason: 'too_new' });
  });

  test('a changed body, id, secret or a missing header fails verification; one valid signature among several passes', () => {
    const now = SPEC.timestampS * 1000;
    const headers = { 'webhook-id': SPEC.id, 'webhook-timestamp': String(SPEC.timestampS), 'webhook-signature': SPEC.signature };
    assert.deepEqual(verifyWebhook(SPEC.secret, headers, `${SPEC.body} `, now), { ok: false, reason: 'bad_signature' });
    assert.deepEqual(verifyWebhook(SPEC.secret, { ...headers, 'webhook-id': 'msg_other' }, SPEC.body, now), { ok: false, reason: 'bad_signature' });
    assert.deepEqual(verifyWebhook('whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', headers, SPEC.body, now), { ok: false, reason: 'bad_signature' });
    assert.deepEqual(verifyWebhook(SPEC.secret, { 'webhook-id': SPEC.id, 'webhook-timestamp': String(SPEC.timestampS) }, SPEC.body, now), {
      ok: false,
      reason: 'missing_headers',
    });
    assert.deepEqual(verifyWebhook(SPEC.secret, { ...headers, 'webhook-timestamp': 'soon' }, SPEC.body, now), { ok: false, reason: 'bad_timestamp' });
    const several = `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc ${SPEC.signature}`;
    assert.deepEqual(verifyWebhook(SPEC.secret, { ...headers, 'webhook-signature': several }, SPEC.body, now), { ok: true });
  });

  test('what TokenGrid sends is accepted by the official standardwebhooks library', () => {
    const secret = formatWebhookSecret(Buffer.alloc(32, 7));
    const body = JSON.stringify({ id: 'evt_1', type: 'threshold_80' });
    const headers = webhookHeaders(secret, 'evt_1', Date.now(), body);
    assert.deepEqual(new Webhook(secret).verify(body, { ...headers }), { id: 'evt_1', type: 'threshold_80' });
    // A secret without the whsec_ prefix is raw key bytes: the library verifies it with format 'raw'.
    const plain = 'a-plain-secret-of-some-length';
    const h2 = webhookHeaders(plain, 'evt_2', Date.now(), body);
    assert.ok(new Webhook(plain, { format: 'raw' }).verify(body, { ...h2 }));
    assert.throws(() => new Webhook(secret).verify(`${body} `, { ...headers }));
  });

  test('a whsec_ secret must carry base64 key bytes', () => {
    assert.throws(() => webhookKey('whsec_'), /base64/);
    assert.throws(() => webhookKey('whsec_not base64!'), /base64/);
    assert.equal(webhookKey('whsec_AQID').toString('hex'), '010203');
  });
});
