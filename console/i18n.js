// Every string the console shows, in English and Simplified Chinese. Server texts (balance summaries) come in
// English from the API; the console shows its own translated labels and numbers around them.
export const STRINGS = {
  en: {
    part_coins: '{n} token coins', part_requests: '{n} requests', part_wallet: '{m} in the wallet', part_credit: '{m} of phone-bill credit', list_sep: ', ',
    sum_have: 'You have {parts} left.', sum_nothing: 'Nothing left to spend.', sum_renews: 'The first allowance renews on {d}.', sum_expires: 'The first allowance expires on {d}.',
    eq_mix: 'about {a} chat questions or {b} pages of code at your usual models', eq_ref: 'about {a} chat questions or {b} pages of code at the reference model',
    fc_none: 'No usage in the last {n} days, so no forecast yet.', fc_empty: 'At this pace (about {r} token coins a day), nothing is left.',
    fc_until: 'At this pace (about {r} token coins a day), it lasts until {d}.', fc_past: 'At this pace (about {r} token coins a day), it lasts past {d}, when the first allowance renews or expires.',
    past_block: 'When the package runs out, requests are refused until it renews; buy an add-on to get more now.',
    past_wallet: 'When the package runs out, requests are paid from the wallet ({wallet} left); when the wallet is empty too, requests are refused.',
    past_postpaid: 'When the package runs out, requests are paid from the wallet, then billed to your phone bill up to {limit}; past that, requests are refused.',
    past_wallet_payg: '{name}: requests are paid from the wallet ({wallet} left); when it is empty, requests are refused.',
    past_postpaid_payg: '{name}: requests are paid from the wallet, then billed to your phone bill up to {limit}; past that, requests are refused.',
    past_block_payg: '{name}: requests are refused when nothing is left.',
    unit_note: 'Packages hold token coins: 1 coin buys 1 token of the reference model. Premium models cost several coins per token, so a 10M package buys fewer tokens there.',
    kind_trial: 'Trial', kind_manual: 'Grant', kind_addon: 'Add-on', kind_plan_allowance: 'Allowance', kind_code: 'Code', kind_points: 'Points',
    no_expiry: 'does not expire', only_models: 'Only for: {models}',
    skip: 'Skip to content', brand: 'TokenGrid', lang: '中文', signout: 'Sign out', loading: 'Loading…', saved: 'Done.',
    error: 'Something went wrong: {msg}', forbidden: 'Your role may not see this.', none: 'Nothing yet.',
    signin_title: 'Sign in', signin_key: 'API key or admin key', signin_key_btn: 'Sign in with key', signin_or: 'or with your phone',
    phone: 'Phone number', send_code: 'Send code', code: 'One-time code', verify: 'Sign in with code', code_sent: 'If the number is registered, a code was sent. It is valid for 5 minutes.',
    nav_balance: 'Balance', nav_usage: 'Usage', nav_buy: 'Buy', nav_keys: 'Keys', nav_family: 'Family', nav_bills: 'Bills', nav_settings: 'Settings',
    nav_accounts: 'Accounts', nav_catalog: 'Catalog', nav_models: 'Models', nav_revenue: 'Revenue', nav_codes: 'Codes', nav_adminkeys: 'Admin keys',
    balance_title: 'Your balance', spendable: 'You can spend about {n} token coins', equivalents: 'That is {text}.', forecast: 'Forecast',
    coins_note: 'What are token coins?', past_cap: 'Past the cap', buckets: 'Your packages', left_of: '{left} left of {total}', renews: 'renews {d}', expires: 'expires {d}',
    wallet: 'Wallet', postpaid: 'Phone-bill credit', postpaid_line: '{used} on the phone bill, {left} of {limit} credit left', member_cap: 'Your personal cap', cap_left: '{left} of {cap} token coins left until {d}',
    cap_none: 'No personal cap.', cap_reached: 'Your cap is used up until {d}.',
    usage_title: 'Usage', by_day: 'Token coins per day', by_model: 'By model', day: 'Day', model: 'Model', requests: 'Requests', tokens: 'Tokens', coins: 'Token coins', coins_unit: 'token coins', chart_label: 'Bar chart: {title}',
    buy_title: 'Buy, top up, redeem', offers: 'Packages you can buy', pay_with: 'Pay with', phone_bill: 'Phone bill', wallet_pay: 'Wallet', buy: 'Buy {name}', change_to: 'Change to {name}', current: 'Current plan',
    price: '{price} CNY', per_cycle: '{price} CNY a {cycle}', topup: 'Top up the wallet (on the phone bill)', amount: 'Amount (CNY)', topup_btn: 'Top up', redeem: 'Redeem a code', redeem_code: 'Code', redeem_btn: 'Redeem',
    bought: 'Bought: {name}.', redeemed: 'Code redeemed.', topped: 'Wallet: {amount} CNY.', cancel_plan: 'Cancel plan at the end of the cycle', canceled: 'Your plan ends on {d}.',
    keys_title: 'API keys', new_key: 'New key', key_name: 'Name', key_models: 'Only these models (comma-separated, empty = all)', key_cap: 'Monthly cap in token coins (empty = none)', create_key: 'Create key',
    key_shown_once: 'Copy this key now; it is shown only once:', revoke: 'Revoke {name}', revoked: 'revoked', active: 'active', key_prefix: 'Key', key_status: 'Status', key_limit: 'Limits',
    family_title: 'Family and team', members: 'Members', add_member: 'Add member', member_name: 'Name', set_cap: 'Set cap for {name}', cap: 'Monthly cap (token coins, empty = none)', role: 'Role',
    bills_title: 'Bills', this_month: 'This month so far', period: 'Month', total: 'Total', phone_part: 'On phone bill', csv: 'Download {period} as CSV', lines: 'Lines',
    settings_title: 'Settings', link_phone: 'Sign in with this phone number', link_btn: 'Send link code', link_code_sent: 'A link code was texted to the number. It is valid for 5 minutes.', link_code: 'Link code from the text', link_verify: 'Link number', linked: 'Linked: {phones}', notifications: 'Notifications', notifications_text: 'Texts go to the linked numbers within a minute of crossing a threshold.', sms_alerts: 'Text me when my packages run low', alert_at: 'Alert when a package is used up to', member_alerts: 'Text me when a family member nears their cap', save: 'Save', language: 'Language',
    accounts_title: 'Accounts', search: 'Search by name or id', name: 'Name', kind: 'Kind', status: 'Status', open: 'Open {name}',
    account_title: 'Account {name}', op_buckets: 'Buckets', col_left: 'Left / granted', col_expires: 'Expires', orders: 'Orders', audit: 'Audit trail', audit_none: 'No audit log on this server.', type: 'Type', actor: 'Who', when: 'When', amount_col: 'Amount', what: 'What',
    catalog_title: 'Catalog', warnings: 'Warnings', no_warnings: 'No warnings.', models_title: 'Models and deployments', deployment: 'Deployment', breaker: 'Breaker', failures: 'Recent failures', region: 'Region', weight: 'Weight',
    window: 'Latency and error rate of the last {n} minutes (settled requests); breaker state now.', error_rate: 'Error rate',
    revenue_title: 'Revenue and margin', revenue: 'Revenue', cost: 'Vendor cost', margin: 'Margin', offer: 'Offer', settlement: 'Vendor settlement', vendor: 'Vendor',
    codes_title: 'Redemption code batches', new_batch: 'New batch', create_batch: 'Create codes', codes_shown_once: 'Copy the codes now; they are shown only once:', by_model_chart: 'Token coins per model (30 days)', batch: 'Batch', count: 'Codes', redeemed_col: 'Redeemed', adminkeys_title: 'Admin keys', created: 'Created', accounts_col: 'Accounts',
  },
  'zh-CN': {
    part_coins: '{n} Token 币', part_requests: '{n} 次请求', part_wallet: '钱包 {m}', part_credit: '话费信用额度 {m}', list_sep: '、',
    sum_have: '您还有 {parts}。', sum_nothing: '已没有可用额度。', sum_renews: '首个额度于 {d} 续期。', sum_expires: '首个额度于 {d} 到期。',
    eq_mix: '按您常用的模型，约 {a} 次聊天提问或 {b} 页代码', eq_ref: '按参考模型，约 {a} 次聊天提问或 {b} 页代码',
    fc_none: '最近 {n} 天没有用量，暂无预测。', fc_empty: '按当前速度（每天约 {r} Token 币），额度已用完。',
    fc_until: '按当前速度（每天约 {r} Token 币），可用到 {d}。', fc_past: '按当前速度（每天约 {r} Token 币），可用到 {d} 之后，届时首个额度续期或到期。',
    past_block: '套餐用完后，请求会被拒绝，直到续期；现在可购买加油包。',
    past_wallet: '套餐用完后，请求从钱包扣费（剩余 {wallet}）；钱包也用完后，请求会被拒绝。',
    past_postpaid: '套餐用完后，请求先从钱包扣费，再记入话费账单，上限 {limit}；超出后请求会被拒绝。',
    past_wallet_payg: '{name}：请求从钱包扣费（剩余 {wallet}）；钱包用完后，请求会被拒绝。',
    past_postpaid_payg: '{name}：请求先从钱包扣费，再记入话费账单，上限 {limit}；超出后请求会被拒绝。',
    past_block_payg: '{name}：没有余额时请求会被拒绝。',
    unit_note: '套餐里是 Token 币：1 个币可买参考模型的 1 个 Token。高端模型每个 Token 要花好几个币，所以 10M 的套餐在这些模型上能用的 Token 更少。',
    kind_trial: '试用', kind_manual: '赠送', kind_addon: '加油包', kind_plan_allowance: '套餐额度', kind_code: '兑换码', kind_points: '积分兑换',
    no_expiry: '不过期', only_models: '仅限：{models}',
    skip: '跳到正文', brand: 'TokenGrid', lang: 'English', signout: '退出', loading: '加载中…', saved: '已完成。',
    error: '出错了：{msg}', forbidden: '您的角色无权查看此页。', none: '暂无内容。',
    signin_title: '登录', signin_key: 'API 密钥或管理员密钥', signin_key_btn: '用密钥登录', signin_or: '或使用手机号',
    phone: '手机号', send_code: '发送验证码', code: '验证码', verify: '用验证码登录', code_sent: '如果该号码已注册，验证码已发送，5 分钟内有效。',
    nav_balance: '余额', nav_usage: '用量', nav_buy: '购买', nav_keys: '密钥', nav_family: '家庭', nav_bills: '账单', nav_settings: '设置',
    nav_accounts: '账户', nav_catalog: '套餐目录', nav_models: '模型', nav_revenue: '收入', nav_codes: '兑换码', nav_adminkeys: '管理员密钥',
    balance_title: '我的余额', spendable: '您还可以使用约 {n} 个 Token 币', equivalents: '相当于 {text}。', forecast: '预测',
    coins_note: '什么是 Token 币？', past_cap: '超出额度后', buckets: '我的套餐', left_of: '剩余 {left}，共 {total}', renews: '{d} 续期', expires: '{d} 到期',
    wallet: '钱包', postpaid: '话费信用额度', postpaid_line: '话费已记 {used}，信用额度 {limit} 剩余 {left}', member_cap: '我的个人上限', cap_left: '个人上限 {cap} Token 币，{d} 前剩余 {left}',
    cap_none: '没有个人上限。', cap_reached: '个人上限已用完，{d} 恢复。',
    usage_title: '用量', by_day: '每日 Token 币', by_model: '按模型', day: '日期', model: '模型', requests: '请求数', tokens: 'Token 数', coins: 'Token 币', coins_unit: 'Token 币', chart_label: '柱状图：{title}',
    buy_title: '购买、充值、兑换', offers: '可购买的套餐', pay_with: '支付方式', phone_bill: '话费账单', wallet_pay: '钱包', buy: '购买 {name}', change_to: '变更为 {name}', current: '当前套餐',
    price: '{price} 元', per_cycle: '{price} 元/{cycle}', topup: '钱包充值（记入话费）', amount: '金额（元）', topup_btn: '充值', redeem: '兑换码', redeem_code: '兑换码', redeem_btn: '兑换',
    bought: '已购买：{name}。', redeemed: '兑换成功。', topped: '钱包余额：{amount} 元。', cancel_plan: '本周期结束时取消套餐', canceled: '套餐将于 {d} 结束。',
    keys_title: 'API 密钥', new_key: '新建密钥', key_name: '名称', key_models: '仅限这些模型（逗号分隔，留空为全部）', key_cap: '每月上限（Token 币，留空为不限）', create_key: '创建密钥',
    key_shown_once: '请立即复制此密钥，它只显示一次：', revoke: '吊销 {name}', revoked: '已吊销', active: '有效', key_prefix: '密钥', key_status: '状态', key_limit: '限制',
    family_title: '家庭与团队', members: '成员', add_member: '添加成员', member_name: '名称', set_cap: '设置 {name} 的上限', cap: '每月上限（Token 币，留空为不限）', role: '角色',
    bills_title: '账单', this_month: '本月至今', period: '月份', total: '合计', phone_part: '记入话费', csv: '下载 {period} 的 CSV', lines: '明细',
    settings_title: '设置', link_phone: '用此手机号登录', link_btn: '发送绑定验证码', link_code_sent: '绑定验证码已发送到该号码，5 分钟内有效。', link_code: '短信中的绑定验证码', link_verify: '绑定号码', linked: '已绑定：{phones}', notifications: '通知', notifications_text: '额度越过阈值后一分钟内会发短信到已绑定的号码。', sms_alerts: '套餐余量不足时短信提醒我', alert_at: '套餐用到以下比例时提醒', member_alerts: '家庭成员接近上限时短信提醒我', save: '保存', language: '语言',
    accounts_title: '账户', search: '按名称或 ID 搜索', name: '名称', kind: '类型', status: '状态', open: '打开 {name}',
    account_title: '账户 {name}', op_buckets: '额度桶', col_left: '剩余 / 总量', col_expires: '到期', orders: '订单', audit: '审计记录', audit_none: '此服务器没有审计日志。', type: '类型', actor: '操作人', when: '时间', amount_col: '金额', what: '内容',
    catalog_title: '套餐目录', warnings: '警告', no_warnings: '没有警告。', models_title: '模型与部署', deployment: '部署', breaker: '熔断状态', failures: '近期失败', region: '区域', weight: '权重',
    window: '最近 {n} 分钟（已结算请求）的延迟与错误率；熔断状态为当前值。', error_rate: '错误率',
    revenue_title: '收入与毛利', revenue: '收入', cost: '供应商成本', margin: '毛利', offer: '套餐', settlement: '供应商结算', vendor: '供应商',
    codes_title: '兑换码批次', new_batch: '新批次', create_batch: '生成兑换码', codes_shown_once: '请立即复制兑换码，它们只显示一次：', by_model_chart: '各模型的 Token 币（30 天）', batch: '批次', count: '数量', redeemed_col: '已兑换', adminkeys_title: '管理员密钥', created: '创建时间', accounts_col: '账户',
  },
};

let lang = 'en';
export function setLang(l) { lang = STRINGS[l] ? l : 'en'; document.documentElement.lang = lang; }
export function getLang() { return lang; }
/** t('left_of', { left: '1M', total: '10M' }) */
export function t(key, vars = {}) {
  const s = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
}
export function fmtNum(n) { return new Intl.NumberFormat(lang).format(n); }
export function fmtCoins(n) {
  return new Intl.NumberFormat(lang, { notation: 'compact', maximumFractionDigits: 2 }).format(n);
}
export function fmtDay(iso) { return iso ? new Intl.DateTimeFormat(lang, { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' }).format(new Date(iso)) : ''; }
