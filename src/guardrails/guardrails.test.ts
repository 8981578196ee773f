import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { blockReason, compileRules, luhnValid, redact, residentIdCheck, StreamRedactor, validResidentId, type Hits } from './index.ts';

// ---- generators of valid values ----
const digits = (n: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((a) => a.join(''));
const residentId = digits(17).map((d) => d + residentIdCheck(d));
function luhnComplete(body: string): string {
  for (let c = 0; c <= 9; c++) if (luhnValid(body + c)) return body + c;
  throw new Error('unreachable');
}
const card = fc.integer({ min: 12, max: 18 }).chain((n) => digits(n).map((body) => luhnComplete(`6${body.slice(1)}`)));
const sep = fc.constantFrom('', ' ', '-');
const phone = fc
  .tuple(fc.constantFrom('', '+86', '86', '+86 ', '86-'), fc.integer({ min: 3, max: 9 }), digits(9), sep)
  .map(([prefix, second, rest, s]) => `${prefix}1${second}${rest.slice(0, 1)}${s}${rest.slice(1, 5)}${s}${rest.slice(5)}`);
const email = fc
  .tuple(fc.stringMatching(/^[a-z0-9][a-z0-9._]{0,10}$/), fc.stringMatching(/^[a-z0-9]{1,10}$/), fc.constantFrom('com', 'cn', 'com.cn', 'org'))
  .map(([local, domain, tld]) => `${local}@${domain}.${tld}`);
/** Filler text that cannot join a value: CJK, punctuation, letters between spaces (no digits, no '@'). */
const filler = fc
  .array(fc.constantFrom('你好', '，', '。', ' hello ', '电话：', ' ', '\n', '号码是', '!', '（', '）'), { maxLength: 6 })
  .map((a) => a.join(''));

test('valid resident ID numbers, Luhn cards, mobile numbers and e-mail addresses are redacted with a typed placeholder', () => {
  const id = `11010519491231002${residentIdCheck('11010519491231002')}`;
  assert.equal(validResidentId(id), true);
  const hits: Hits = {};
  const out = redact(`身份证 ${id}，卡号 4111111111111111，电话 +86 138-1234-5678，邮箱 zhang.san@example.com.cn。`, undefined, hits);
  assert.equal(out, '身份证 [ID]，卡号 [CARD]，电话 [PHONE]，邮箱 [EMAIL]。');
  assert.deepEqual(hits, { id: 1, card: 1, phone: 1, email: 1 });
});

test('an 18-digit number with a wrong check digit is not an ID, and a card number failing Luhn is kept', () => {
  const first = '11010519491231002';
  const good = residentIdCheck(first);
  const bad = good === '1' ? '2' : '1';
  assert.equal(validResidentId(first + bad), false);
  assert.equal(redact(`id ${first}${bad} end`).includes(`${first}${bad}`), !luhnValid(first + bad));
  assert.equal(redact('card 4111111111111112 end'), 'card 4111111111111112 end');
  assert.equal(redact('order 12345678901 x'), 'order 12345678901 x'); // 11 digits not starting 1[3-9]
});

test('operator rules: keywords block case-insensitively, block patterns match, redact patterns replace, bad regexes are named', () => {
  const rules = compileRules({ blockKeywords: ['Top Secret'], blockPatterns: ['sk-[a-z0-9]{8}'], redactPatterns: ['工号\\d+'] });
  assert.deepEqual(blockReason('this is TOP SECRET stuff', rules), { kind: 'keyword', what: 'top secret' });
  assert.equal(blockReason('key sk-abcdef12', rules)?.kind, 'block_pattern');
  assert.equal(blockReason('harmless', rules), undefined);
  assert.equal(redact('我的工号123456', rules), '我的[REDACTED]');
  assert.throws(() => compileRules({ blockPatterns: ['(unclosed'] }), /invalid regex "\(unclosed"/);
});

test('property: any valid value embedded in random text is redacted and does not survive', () => {
  const value = fc.oneof(
    residentId.map((v) => ({ v, p: '[ID]' })),
    card.map((v) => ({ v, p: '[CARD]' })),
    phone.map((v) => ({ v, p: '[PHONE]' })),
    email.map((v) => ({ v, p: '[EMAIL]' })),
  );
  fc.assert(
    fc.property(filler, value, filler, (a, { v, p }, b) => {
      const out = redact(`${a} ${v} ${b}`);
      assert.ok(!out.includes(v), `${v} survived: ${out}`);
      // An 18-digit card that is also a valid ID is redacted as [ID]; '86'+phone may be a Luhn-valid [CARD].
      const also = p === '[CARD]' ? '[ID]' : p === '[PHONE]' ? '[CARD]' : p;
      assert.ok(out.includes(p) || out.includes(also), `${p} missing: ${out}`);
    }),
    { numRuns: 400 },
  );
});

function streamed(text: string, cuts: number[]): string {
  const r = new StreamRedactor();
  let out = '';
  let at = 0;
  for (const c of [...cuts, text.length]) {
    out += r.push(text.slice(at, c));
    at = c;
  }
  return out + r.flush();
}

test('property: streaming gives the whole-text result when split at every possible chunk boundary', () => {
  const piece = fc.oneof(residentId, card, phone, email, filler, fc.constantFrom('a', '1', ' 2', '@', '.', 'x@y', '13800'));
  fc.assert(
    fc.property(fc.array(piece, { minLength: 1, maxLength: 6 }), (pieces) => {
      const text = pieces.join(' ');
      const whole = redact(text);
      for (let i = 0; i <= text.length; i++) assert.equal(streamed(text, [i]), whole, `cut at ${i} of ${JSON.stringify(text)}`);
    }),
    { numRuns: 200 },
  );
});

test('property: streaming in random chunk sizes (down to one character) gives the whole-text result', () => {
  const piece = fc.oneof(residentId, card, phone, email, filler, fc.string({ maxLength: 8 }));
  fc.assert(
    fc.property(fc.array(piece, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 12 }), (pieces, raw) => {
      const text = pieces.join('');
      const cuts = [...new Set(raw.map((c) => c % (text.length + 1)))].sort((x, y) => x - y);
      assert.equal(streamed(text, cuts), redact(text));
      const perChar = [...Array(text.length).keys()].slice(1);
      assert.equal(streamed(text, perChar), redact(text));
    }),
    { numRuns: 300 },
  );
});

test('the stream redactor holds back only the run a match could still extend', () => {
  const r = new StreamRedactor();
  assert.equal(r.push('你好，电话 138'), '你好，电话 ');
  assert.equal(r.holding, 3);
  assert.equal(r.push('1234'), '');
  assert.equal(r.push('5678。再见'), '[PHONE]。再见');
  assert.equal(r.holding, 0);
  assert.equal(r.flush(), '');
  assert.deepEqual(r.hits, { phone: 1 });
});
