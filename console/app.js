// The TokenGrid console: subscriber pages (API key or phone sign-in) and operator pages (admin key), one
// hash-routed page at a time, all data from the public /self and /admin APIs. Plain ES modules, no build.
import { h, table } from './dom.js';
import { t, setLang, getLang, fmtNum, fmtCoins, fmtDay } from './i18n.js';
import { barChart } from './charts.js';

const state = { key: sessionStorage.getItem('tg.key'), lang: localStorage.getItem('tg.lang') ?? (navigator.language.startsWith('zh') ? 'zh-CN' : 'en') };
const isAdmin = () => (state.key ?? '').startsWith('tgadmin-');
const main = () => document.getElementById('main');
const status = (msg) => {
  document.getElementById('status').textContent = msg;
  setTimeout(() => {
    document.getElementById('status').textContent = '';
  }, 4000);
};

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}
async function api(method, path, body, idem) {
  const headers = { authorization: `Bearer ${state.key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (idem) headers['idempotency-key'] = crypto.randomUUID();
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!r.ok) throw new ApiError(r.status, json);
  return json;
}
const get = (p) => api('GET', p);
const order = (p, body) => api('POST', p, body, true);

function field(id, label, attrs = {}) {
  return [h('label', { for: id }, label), h('input', { id, name: id, ...attrs })];
}
function form(onsubmit, ...children) {
  return h(
    'form',
    {
      class: 'card',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          await onsubmit(new FormData(e.target));
        } catch (err) {
          status(t('error', { msg: err.message }));
        }
      },
    },
    ...children,
  );
}

// ---------------------------------------------------------------- sign-in
function signIn() {
  const phoneStep = h('div', {});
  return [
    h('h1', {}, t('signin_title')),
    form(
      async (fd) => {
        state.key = String(fd.get('key')).trim();
        state.role = null;
        sessionStorage.setItem('tg.key', state.key);
        location.hash = isAdmin() ? '#/accounts' : '#/balance';
        render();
      },
      ...field('key', t('signin_key'), { type: 'password', autocomplete: 'off', required: true }),
      h('button', { type: 'submit' }, t('signin_key_btn')),
    ),
    h('h2', {}, t('signin_or')),
    form(
      async (fd) => {
        const phone = String(fd.get('phone'));
        await fetch('/console/api/otp', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ phone }) }).then(
          async (r) => {
            if (!r.ok) throw new ApiError(r.status, await r.json());
          },
        );
        status(t('code_sent'));
        phoneStep.replaceChildren(
          form(
            async (fd2) => {
              const r = await fetch('/console/api/otp/verify', {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ phone, code: String(fd2.get('code')) }),
              });
              const j = await r.json();
              if (!r.ok) throw new ApiError(r.status, j);
              state.key = j.key;
              sessionStorage.setItem('tg.key', j.key);
              location.hash = '#/balance';
              render();
            },
            ...field('code', t('code'), { inputmode: 'numeric', autocomplete: 'one-time-code', required: true }),
            h('button', { type: 'submit' }, t('verify')),
          ),
        );
      },
      ...field('phone', t('phone'), { type: 'tel', autocomplete: 'tel', required: true }),
      h('button', { type: 'submit', class: 'secondary' }, t('send_code')),
    ),
    phoneStep,
  ];
}

// ---------------------------------------------------------------- subscriber pages
/** The balance in the reader's language, composed from the API's numbers (its English sentences are for API users). */
function balanceTexts(b) {
  const coins = b.buckets.filter((x) => x.unit === 'tokens' && Date.parse(x.validFrom) <= Date.now()).reduce((s, x) => s + x.left, 0);
  const reqs = b.buckets.filter((x) => x.unit === 'requests').reduce((s, x) => s + x.left, 0);
  const parts = [
    coins > 0 ? t('part_coins', { n: fmtCoins(coins) }) : null,
    reqs > 0 ? t('part_requests', { n: fmtNum(reqs) }) : null,
    b.wallet.balanceMinor > 0 ? t('part_wallet', { m: b.wallet.balance }) : null,
    b.postpaid && b.postpaid.leftMinor > 0 ? t('part_credit', { m: b.postpaid.left }) : null,
  ].filter(Boolean);
  const first = b.buckets.find((x) => x.left > 0 && x.expiresAt);
  let summary = parts.length === 0 || (b.spendableCoins === 0 && reqs === 0) ? t('sum_nothing') : t('sum_have', { parts: parts.join(t('list_sep')) });
  if (first && summary !== t('sum_nothing')) summary += ` ${t(first.renewsAt ? 'sum_renews' : 'sum_expires', { d: fmtDay(first.expiresAt) })}`;
  if (b.member?.reached) summary = t('cap_reached', { d: fmtDay(b.member.resetsAt) });
  const eq = b.equivalents.items;
  const equivalents = t(b.equivalents.basis === 'your_mix' ? 'eq_mix' : 'eq_ref', { a: fmtNum(eq[0].count), b: fmtNum(eq[1].count) });
  const f = b.forecast;
  const rate = fmtNum(f.coinsPerDay);
  const forecast =
    f.coinsPerDay === 0
      ? t('fc_none', { n: f.basisDays })
      : b.spendableCoins === 0
        ? t('fc_empty', { r: rate })
        : f.beforeRenewal === false
          ? t('fc_past', { r: rate, d: fmtDay(first?.expiresAt) })
          : t('fc_until', { r: rate, d: fmtDay(f.lastsUntil) });
  const pastCap = t(`past_${b.overage}${b.plan === null && b.payg ? '_payg' : ''}`, {
    wallet: b.wallet.balance,
    limit: b.postpaid?.creditLimit ?? '',
    name: b.payg?.name ?? '',
  });
  return { summary, equivalents, forecast, pastCap };
}

async function balancePage() {
  const b = await get('/self/balance');
  const x = balanceTexts(b);
  const out = [
    h('h1', {}, t('balance_title')),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'sum' },
      h('p', { id: 'sum', class: 'big' }, x.summary),
      h('p', { id: 'spendable' }, t('spendable', { n: fmtNum(b.spendableCoins) }), ' · ', t('equivalents', { text: x.equivalents })),
      h('p', { id: 'forecast' }, h('strong', {}, `${t('forecast')}: `), x.forecast),
    ),
  ];
  if (b.member) {
    const m = b.member;
    out.push(
      h(
        'section',
        { class: 'card', id: 'member-cap' },
        h('h2', {}, t('member_cap')),
        h(
          'p',
          { class: m.reached ? 'bad' : '' },
          m.capCoins === null
            ? t('cap_none')
            : m.reached
              ? t('cap_reached', { d: fmtDay(m.resetsAt) })
              : t('cap_left', { left: fmtCoins(m.leftCoins), cap: fmtCoins(m.capCoins), d: fmtDay(m.resetsAt) }),
        ),
        m.capCoins === null ? null : h('progress', { max: m.capCoins, value: m.usedCoins, 'aria-label': t('member_cap') }),
      ),
    );
  }
  out.push(h('h2', {}, t('buckets')));
  for (const bk of b.buckets) {
    const generic = {
      Trial: 'kind_trial',
      Grant: 'kind_manual',
      'Add-on': 'kind_addon',
      Allowance: 'kind_plan_allowance',
      Code: 'kind_code',
      Points: 'kind_points',
      'Points redemption': 'kind_points',
    }[bk.name];
    out.push(
      h(
        'section',
        { class: 'card' },
        h('p', { class: 'big' }, generic ? t(generic) : bk.name),
        h(
          'p',
          {},
          t('left_of', { left: `${fmtCoins(bk.left)}${bk.unit === 'tokens' ? ` ${t('coins_unit')}` : ''}`, total: fmtCoins(bk.total) }),
          ' · ',
          bk.renewsAt ? t('renews', { d: fmtDay(bk.renewsAt) }) : bk.expiresAt ? t('expires', { d: fmtDay(bk.expiresAt) }) : t('no_expiry'),
        ),
        h('progress', { max: Math.max(1, bk.total), value: bk.used, 'aria-label': bk.name }),
        bk.models ? h('p', { class: 'muted' }, t('only_models', { models: bk.models.join(', ') })) : null,
      ),
    );
  }
  out.push(
    h(
      'section',
      { class: 'card' },
      h('p', {}, h('strong', {}, `${t('wallet')}: `), b.wallet.balance),
      b.postpaid
        ? h(
            'p',
            { id: 'postpaid' },
            h('strong', {}, `${t('postpaid')}: `),
            t('postpaid_line', { used: b.postpaid.used, left: b.postpaid.left, limit: b.postpaid.creditLimit }),
          )
        : null,
    ),
  );
  out.push(
    h(
      'section',
      { class: 'card' },
      h('h2', {}, t('past_cap')),
      h('p', { id: 'past-cap' }, x.pastCap),
      h('h2', {}, t('coins_note')),
      h('p', {}, t('unit_note')),
    ),
  );
  return out;
}

async function usagePage() {
  const u = await get('/self/usage');
  const days = [...new Set(u.data.map((r) => r.day))].sort();
  const models = [...new Set(u.data.map((r) => r.model))];
  const series = models
    .slice(0, 5)
    .map((m) => ({ name: m, values: days.map((d) => u.data.filter((r) => r.day === d && r.model === m).reduce((s, r) => s + r.coins, 0)) }));
  const byModel = models.map((m) => {
    const rs = u.data.filter((r) => r.model === m);
    return [m, fmtNum(rs.reduce((s, r) => s + r.requests, 0)), fmtNum(rs.reduce((s, r) => s + r.tokens, 0)), fmtNum(rs.reduce((s, r) => s + r.coins, 0))];
  });
  return [
    h('h1', {}, t('usage_title')),
    h('p', { id: 'usage-total' }, `${t('coins')}: ${fmtNum(u.totalCoins)} · ${t('tokens')}: ${fmtNum(u.totalTokens)}`),
    days.length === 0 ? h('p', {}, t('none')) : barChart(t('by_day'), days, series),
    h('h2', {}, t('by_model')),
    models.length === 0
      ? null
      : barChart(t('by_model_chart'), models, [
          { name: t('coins'), values: models.map((m) => u.data.filter((r) => r.model === m).reduce((s, r) => s + r.coins, 0)) },
        ]),
    table([t('model'), t('requests'), t('tokens'), t('coins')], byModel),
  ];
}

async function buyPage() {
  const offers = await get('/self/offers');
  const out = [h('h1', {}, t('buy_title')), h('h2', {}, t('offers'))];
  for (const o of offers.data.filter((x) => x.buyable)) {
    const id = `pay-${o.id}`;
    out.push(
      form(
        async (fd) => {
          const channel = String(fd.get(id));
          if (o.action === 'addon') await order('/self/addons', { offerId: o.id, channel });
          else if (o.action === 'change') await order(`/self/subscriptions/${offers.plan.subscriptionId}/change`, { offerId: o.id });
          else await order('/self/subscriptions', { offerId: o.id, channel });
          status(t('bought', { name: o.name }));
          render();
        },
        h('p', { class: 'big' }, o.name),
        h('p', { class: 'muted' }, o.description),
        h('p', {}, o.cycle ? t('per_cycle', { price: o.price, cycle: o.cycle }) : t('price', { price: o.price })),
        o.action === 'change'
          ? null
          : [
              h('label', { for: id }, t('pay_with')),
              h('select', { id, name: id }, h('option', { value: 'phone_bill' }, t('phone_bill')), h('option', { value: 'wallet' }, t('wallet_pay'))),
            ],
        h('button', { type: 'submit', 'data-offer': o.id }, o.action === 'change' ? t('change_to', { name: o.name }) : t('buy', { name: o.name })),
      ),
    );
  }
  if (offers.plan) {
    out.push(
      h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          onclick: async () => {
            const r = await order(`/self/subscriptions/${offers.plan.subscriptionId}/cancel`);
            status(t('canceled', { d: fmtDay(r.cancelAt) }));
          },
        },
        t('cancel_plan'),
      ),
    );
  }
  out.push(
    h('h2', {}, t('topup')),
    form(
      async (fd) => {
        const r = await order('/self/topup', { amount: String(fd.get('amount')) });
        status(t('topped', { amount: r.wallet.balance }));
      },
      ...field('amount', t('amount'), { inputmode: 'decimal', required: true }),
      h('button', { type: 'submit' }, t('topup_btn')),
    ),
  );
  out.push(
    h('h2', {}, t('redeem')),
    form(
      async (fd) => {
        await order('/self/redeem', { code: String(fd.get('redeem')) });
        status(t('redeemed'));
        location.hash = '#/balance';
      },
      ...field('redeem', t('redeem_code'), { autocomplete: 'off', required: true }),
      h('button', { type: 'submit' }, t('redeem_btn')),
    ),
  );
  return out;
}

async function keysPage() {
  const keys = await get('/self/keys');
  const shown = h('div', { id: 'new-key' });
  return [
    h('h1', {}, t('keys_title')),
    table(
      [t('key_name'), t('key_prefix'), t('key_status'), t('key_limit'), ''],
      keys.data.map((k) => [
        k.name,
        k.prefix,
        k.revokedAt ? t('revoked') : t('active'),
        [k.allowedModels ? k.allowedModels.join(', ') : '', k.monthlyCap ? ` ${k.monthlyCap.text}` : ''],
        k.revokedAt || k.current
          ? ''
          : [
              h(
                'button',
                {
                  type: 'button',
                  class: 'secondary',
                  onclick: async () => {
                    await api('POST', `/self/keys/${k.id}/revoke`);
                    render();
                  },
                },
                t('revoke', { name: k.name }),
              ),
              k.monthlyCap
                ? form(
                    async (fd) => {
                      const v = String(fd.get(`kc-${k.id}`)).trim();
                      await api('PUT', `/self/keys/${k.id}/cap`, { monthlyCap: v === '' ? null : Number(v) });
                      status(t('saved'));
                      render();
                    },
                    h('label', { for: `kc-${k.id}` }, t('key_cap')),
                    h('input', { id: `kc-${k.id}`, name: `kc-${k.id}`, inputmode: 'numeric', value: k.monthlyCap.cap ?? '' }),
                    h('button', { type: 'submit' }, t('set_cap', { name: k.name })),
                  )
                : null,
            ],
      ]),
    ),
    h('h2', {}, t('new_key')),
    form(
      async (fd) => {
        const models = String(fd.get('models') ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const cap = String(fd.get('cap') ?? '').trim();
        const r = await api('POST', '/self/keys', {
          name: String(fd.get('kname')),
          ...(models.length ? { allowedModels: models } : {}),
          ...(cap ? { monthlyCap: Number(cap) } : {}),
        });
        shown.replaceChildren(h('div', { class: 'card' }, h('p', {}, t('key_shown_once')), h('p', { class: 'secret', id: 'secret' }, r.key)));
      },
      ...field('kname', t('key_name'), { required: true }),
      ...field('models', t('key_models')),
      ...field('cap', t('key_cap'), { inputmode: 'numeric' }),
      h('button', { type: 'submit' }, t('create_key')),
    ),
    shown,
  ];
}

async function familyPage() {
  const ms = await get('/self/members');
  const out = [
    h('h1', {}, t('family_title')),
    table(
      [t('member_name'), t('role'), t('member_cap')],
      ms.data.map((m) => [m.name, m.role, m.cap.text]),
    ),
  ];
  if (!ms.you.manages) return out;
  for (const m of ms.data.filter((x) => !x.agent)) {
    const id = `cap-${m.id}`;
    out.push(
      form(
        async (fd) => {
          const v = String(fd.get(id)).trim();
          await api('PUT', `/self/members/${m.id}/cap`, { monthlyCap: v === '' ? null : Number(v) });
          status(t('saved'));
          render();
        },
        h('label', { for: id }, t('set_cap', { name: m.name })),
        h('input', { id, name: id, inputmode: 'numeric', value: m.cap.capCoins ?? '' }),
        h('button', { type: 'submit' }, t('set_cap', { name: m.name })),
      ),
    );
  }
  out.push(
    h('h2', {}, t('add_member')),
    form(
      async (fd) => {
        const v = String(fd.get('mcap')).trim();
        await api('POST', '/self/members', { name: String(fd.get('mname')), ...(v ? { monthlyCap: Number(v) } : {}) });
        render();
      },
      ...field('mname', t('member_name'), { required: true }),
      ...field('mcap', t('cap'), { inputmode: 'numeric' }),
      h('button', { type: 'submit' }, t('add_member')),
    ),
  );
  return out;
}

async function download(path, name) {
  const r = await fetch(path, { headers: { authorization: `Bearer ${state.key}` } });
  const url = URL.createObjectURL(await r.blob());
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(url);
}

async function billsPage() {
  const [bills, preview] = await Promise.all([get('/self/bills'), get('/self/bills/preview')]);
  const row = (b) => [
    b.period,
    `${b.total} ${b.currency}`,
    `${b.phoneBill} ${b.currency}`,
    b.id
      ? h(
          'button',
          { type: 'button', class: 'link', onclick: () => download(`/self/bills/${b.id}.csv`, `bill-${b.period}.csv`) },
          t('csv', { period: b.period }),
        )
      : '',
  ];
  return [
    h('h1', {}, t('bills_title')),
    h('h2', {}, t('this_month')),
    table([t('period'), t('total'), t('phone_part'), ''], [row(preview)]),
    table(
      [t('what'), t('amount_col')],
      preview.lines.map((l) => [l.description, l.amount]),
    ),
    h('h2', {}, t('bills_title')),
    bills.data.length ? table([t('period'), t('total'), t('phone_part'), ''], bills.data.map(row)) : h('p', {}, t('none')),
  ];
}

async function settingsPage() {
  const n = await get('/self/notifications');
  const linkStep = h('div', {});
  const box = (id, label, checked, value) =>
    h('div', { class: 'check' }, h('input', { type: 'checkbox', id, name: id, value: value ?? 'on', checked }), h('label', { for: id }, label));
  return [
    h('h1', {}, t('settings_title')),
    // Two steps (issue 12): the number gets a link code by text; the number is linked only with that code.
    h('h2', {}, t('link_phone')),
    form(
      async (fd) => {
        const phone = String(fd.get('lphone'));
        const sent = await api('PUT', '/self/phone', { phone });
        if (sent.phones) {
          status(t('linked', { phones: sent.phones.join(', ') }));
          render();
          return;
        }
        status(t('link_code_sent'));
        linkStep.replaceChildren(
          form(
            async (fd2) => {
              const r = await api('PUT', '/self/phone', { phone, code: String(fd2.get('lcode')).trim() });
              status(t('linked', { phones: r.phones.join(', ') }));
              render();
            },
            ...field('lcode', t('link_code'), { inputmode: 'numeric', autocomplete: 'one-time-code', required: true }),
            h('button', { type: 'submit' }, t('link_verify')),
          ),
        );
        document.getElementById('lcode')?.focus();
      },
      n.phones.length ? h('p', {}, t('linked', { phones: n.phones.join(', ') })) : null,
      ...field('lphone', t('phone'), { type: 'tel', required: true }),
      h('button', { type: 'submit' }, t('link_btn')),
    ),
    linkStep,
    h('h2', {}, t('notifications')),
    form(
      async (fd) => {
        await api('PUT', '/self/notifications', {
          sms: fd.get('n-sms') === 'on',
          thresholds: [50, 80, 100].filter((p) => fd.get(`n-${p}`) !== null),
          memberCaps: fd.get('n-members') === 'on',
        });
        status(t('saved'));
      },
      box('n-sms', t('sms_alerts'), n.sms),
      h(
        'fieldset',
        {},
        h('legend', {}, t('alert_at')),
        [50, 80, 100].map((p) => box(`n-${p}`, `${p}%`, n.thresholds.includes(p), String(p))),
      ),
      box('n-members', t('member_alerts'), n.memberCaps),
      h('p', { class: 'muted' }, t('notifications_text')),
      h('button', { type: 'submit' }, t('save')),
    ),
  ];
}

// ---------------------------------------------------------------- operator pages
async function accountsPage() {
  const all = (await get('/admin/accounts')).data;
  const list = h('div', { id: 'account-list' });
  const show = (q) =>
    list.replaceChildren(
      table(
        [t('name'), 'ID', t('kind'), t('status')],
        all
          .filter((a) => !q || a.name.toLowerCase().includes(q.toLowerCase()) || a.id.includes(q))
          .map((a) => [h('a', { href: `#/account/${a.id}`, 'aria-label': t('open', { name: a.name }) }, a.name), a.id, a.kind, a.status]),
      ),
    );
  show('');
  return [
    h('h1', {}, t('accounts_title')),
    h('label', { for: 'search' }, t('search')),
    h('input', { id: 'search', type: 'search', oninput: (e) => show(e.target.value) }),
    list,
  ];
}

async function accountPage(id) {
  const [a, bal, usage, orders] = await Promise.all([
    get(`/admin/accounts/${id}`),
    get(`/admin/accounts/${id}/balance`),
    get(`/admin/accounts/${id}/usage`),
    get(`/admin/orders?account=${id}`),
  ]);
  let audit = null;
  try {
    audit = await get(`/admin/audit?account=${encodeURIComponent(id)}`);
  } catch {
    audit = null;
  }
  const days = [...new Set(usage.data.map((r) => r.day))].sort();
  const auditRows = (audit?.data ?? audit?.entries ?? []).map((e) => [
    fmtDay(e.at ?? e.createdAt ?? (e.atMs ? new Date(e.atMs).toISOString() : '')),
    e.actor ?? e.adminId ?? '',
    e.action ?? e.op ?? e.type ?? '',
    e.target ?? e.summary ?? e.message ?? JSON.stringify(e.details ?? ''),
  ]);
  return [
    h('h1', {}, t('account_title', { name: a.name })),
    h('p', { class: 'muted' }, `${a.id} · ${a.kind} · ${a.status}`),
    h('h2', {}, t('op_buckets')),
    table(
      [t('type'), t('col_left'), t('col_expires')],
      bal.buckets
        .filter((b) => !b.expired)
        .map((b) => [
          b.kind,
          b.unit === 'money'
            ? `${(b.remaining / 100).toFixed(2)} / ${(b.granted / 100).toFixed(2)} ${b.currency}`
            : `${fmtNum(b.remaining)} / ${fmtNum(b.granted)} ${b.unit === 'tokens' ? t('coins_unit') : t('requests')}`,
          fmtDay(b.expiresAt),
        ]),
    ),
    h('h2', {}, t('usage_title')),
    days.length
      ? barChart(t('by_day'), days, [{ name: t('coins'), values: days.map((d) => usage.data.filter((r) => r.day === d).reduce((s, r) => s + r.costCoins, 0)) }])
      : h('p', {}, t('none')),
    h('h2', {}, t('orders')),
    table(
      [t('when'), t('type'), t('what'), t('amount_col'), t('actor')],
      orders.data.map((o) => [fmtDay(o.createdAt), o.type, o.offerId ?? '', o.amount, o.actor]),
    ),
    h('h2', {}, t('audit')),
    audit === null ? h('p', {}, t('audit_none')) : table([t('when'), t('actor'), t('type'), t('what')], auditRows),
  ];
}

async function catalogPage() {
  const c = await get('/admin/offers?all=true');
  return [
    h('h1', {}, t('catalog_title')),
    h('p', { class: 'muted' }, c.version),
    h('h2', {}, t('warnings')),
    c.warnings.length
      ? h(
          'ul',
          { class: 'card' },
          c.warnings.map((w) => h('li', {}, w)),
        )
      : h('p', {}, t('no_warnings')),
    table(
      ['ID', t('name'), t('type'), t('price', { price: '' }), t('status')],
      c.data.map((o) => [o.id, o.name, o.type, o.price, o.status]),
    ),
  ];
}

async function modelsPage() {
  const d = await get('/console/api/deployments');
  const ms = (v) => (v === null ? '–' : `${fmtNum(v)} ms`);
  return [
    h('h1', {}, t('models_title')),
    h('p', { class: 'muted' }, t('window', { n: d.windowMinutes })),
    table(
      [t('model'), t('deployment'), t('breaker'), t('failures'), t('requests'), 'p50', 'p95', t('error_rate')],
      d.data.map((x) => [
        x.model,
        `${x.deployment} (${x.region}, ${x.weight})`,
        h('span', { class: x.state === 'closed' ? 'ok' : 'bad' }, x.state),
        String(x.failures),
        String(x.requests),
        ms(x.latencyMsP50),
        ms(x.latencyMsP95),
        x.errorRate === null ? '–' : `${(x.errorRate * 100).toFixed(1)}%`,
      ]),
    ),
  ];
}

async function revenuePage() {
  const period = new Date().toISOString().slice(0, 7);
  const from = new Date(Date.now() - 30 * 86400000).toISOString();
  const [m, v] = await Promise.all([
    get(`/admin/reports/margin?period=${period}`),
    get(`/admin/reports/vendor-settlement?from=${from}&to=${new Date().toISOString()}`),
  ]);
  const rows = m.data ?? m.rows ?? [];
  const labels = rows.map((r) => r.offerId ?? r.offer ?? '?');
  const vrows = v.data ?? v.rows ?? [];
  return [
    h('h1', {}, t('revenue_title')),
    h('p', { class: 'muted' }, period),
    rows.length
      ? barChart(t('margin'), labels, [
          { name: t('revenue'), values: rows.map((r) => (r.revenueMinor ?? 0) / 100) },
          { name: t('cost'), values: rows.map((r) => (r.costMinor ?? r.vendorCostMinor ?? 0) / 100) },
        ])
      : h('p', {}, t('none')),
    table(
      [t('offer'), t('revenue'), t('cost'), t('margin')],
      rows.map((r) => [
        r.offerId ?? '',
        ((r.revenueMinor ?? 0) / 100).toFixed(2),
        ((r.costMinor ?? r.vendorCostMinor ?? 0) / 100).toFixed(2),
        `${((r.marginMinor ?? 0) / 100).toFixed(2)}${r.marginPct ? ` (${r.marginPct}%)` : ''}`,
      ]),
    ),
    h('h2', {}, t('settlement')),
    table(
      [t('vendor'), t('model'), t('day'), t('cost')],
      vrows.slice(0, 100).map((r) => [r.vendor ?? '', r.model ?? '', r.day ?? '', typeof r.costMicros === 'number' ? (r.costMicros / 1e6).toFixed(4) : '']),
    ),
  ];
}

async function codesPage() {
  const [c, offers] = await Promise.all([get('/admin/codes'), get('/admin/offers')]);
  const shown = h('div', { id: 'new-codes' });
  const out = [
    h('h1', {}, t('codes_title')),
    table(
      [t('batch'), t('offer'), t('count'), t('redeemed_col'), t('created')],
      c.data.map((b) => [b.batchId, b.offerId, String(b.count), String(b.redeemed), fmtDay(b.createdAt)]),
    ),
  ];
  if (state.role === 'operator') {
    out.push(
      h('h2', {}, t('new_batch')),
      form(
        async (fd) => {
          const r = await order('/admin/codes', { offerId: String(fd.get('c-offer')), count: Number(fd.get('c-count')) });
          shown.replaceChildren(h('div', { class: 'card' }, h('p', {}, t('codes_shown_once')), h('pre', { class: 'secret', id: 'codes' }, r.codes.join('\n'))));
        },
        h('label', { for: 'c-offer' }, t('offer')),
        h(
          'select',
          { id: 'c-offer', name: 'c-offer' },
          offers.data
            .filter((o) => o.type === 'pack' || o.type === 'trial' || (o.type === 'addon' && !o.renews))
            .map((o) => h('option', { value: o.id }, `${o.name} (${o.id})`)),
        ),
        ...field('c-count', t('count'), { inputmode: 'numeric', required: true, value: '10' }),
        h('button', { type: 'submit' }, t('create_batch')),
      ),
      shown,
    );
  }
  return out;
}

async function adminKeysPage() {
  const k = await get('/admin/admin-keys');
  return [
    h('h1', {}, t('adminkeys_title')),
    table(
      [t('name'), t('role'), t('accounts_col'), t('status'), t('created')],
      k.data.map((x) => [x.name, x.role, (x.accountIds ?? []).join(', '), x.revokedAt ? t('revoked') : t('active'), fmtDay(x.createdAt)]),
    ),
  ];
}

// ---------------------------------------------------------------- shell
const SUB = [
  ['balance', balancePage],
  ['usage', usagePage],
  ['buy', buyPage],
  ['keys', keysPage],
  ['family', familyPage],
  ['bills', billsPage],
  ['settings', settingsPage],
];
const OPS = [
  ['accounts', accountsPage],
  ['catalog', catalogPage],
  ['models', modelsPage],
  ['revenue', revenuePage],
  ['codes', codesPage],
  ['adminkeys', adminKeysPage],
];
/** What each admin role's console shows (the server enforces the same: a page it refuses says so). */
const ROLE_PAGES = { operator: OPS.map(([p]) => p), finance: ['accounts', 'catalog', 'models', 'revenue', 'codes'], enterprise: ['accounts'] };

async function render() {
  setLang(state.lang);
  document.getElementById('status').textContent = '';
  document.title = `${t('brand')}`;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  document.getElementById('nav').setAttribute('aria-label', t('brand'));
  const langBtn = document.getElementById('lang');
  langBtn.textContent = t('lang');
  langBtn.setAttribute('lang', getLang() === 'en' ? 'zh-CN' : 'en');
  const out = document.getElementById('signout');
  out.textContent = t('signout');
  out.hidden = !state.key;
  const nav = document.getElementById('nav');
  const [page, arg] = location.hash.replace(/^#\//, '').split('/');
  if (!state.key) {
    nav.replaceChildren();
    main().replaceChildren(...signIn());
    return;
  }
  if (isAdmin() && !state.role) {
    try {
      state.role = (await get('/console/api/whoami')).role;
    } catch (e) {
      if (e.status === 401) {
        state.key = null;
        sessionStorage.removeItem('tg.key');
        render();
        return;
      }
      state.role = 'enterprise';
    }
  }
  const pages = isAdmin() ? OPS.filter(([p]) => (ROLE_PAGES[state.role] ?? ['accounts']).includes(p)) : SUB;
  const current = page === 'account' ? 'accounts' : pages.some(([p]) => p === page) ? page : pages[0][0];
  nav.replaceChildren(...pages.map(([p]) => h('a', { href: `#/${p}`, 'aria-current': p === current ? 'page' : null }, t(`nav_${p}`))));
  main().replaceChildren(h('p', {}, t('loading')));
  try {
    const nodes = page === 'account' && isAdmin() ? await accountPage(arg) : await pages.find(([p]) => p === current)[1]();
    main().replaceChildren(...[nodes].flat());
  } catch (e) {
    if (e.status === 401) {
      state.key = null;
      sessionStorage.removeItem('tg.key');
      render();
      return;
    }
    main().replaceChildren(
      h('h1', {}, t(`nav_${current}`)),
      h('p', { class: 'bad', role: 'alert' }, e.status === 403 ? t('forbidden') : t('error', { msg: e.message })),
    );
  }
  document.body.dataset.page = page === 'account' ? 'account' : current;
  document.body.dataset.ready = String(Date.now());
}

document.getElementById('lang').addEventListener('click', () => {
  state.lang = state.lang === 'en' ? 'zh-CN' : 'en';
  localStorage.setItem('tg.lang', state.lang);
  render();
});
document.getElementById('signout').addEventListener('click', () => {
  state.key = null;
  state.role = null;
  sessionStorage.removeItem('tg.key');
  location.hash = '';
  render();
});
window.addEventListener('hashchange', render);
render();
