import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encode, encodeChat } from 'gpt-tokenizer/encoding/o200k_base';
import type { ChatRequest } from './types.ts';
import {
  asciiBoundTokens,
  boundTextTokens,
  chatInputTokens,
  cutTextAtTokens,
  estimateChatInputTokens,
  estimateTextTokens,
  meterTextTokens,
  rawTextTokens,
  TextMeter,
  floorTextTokens,
  floorUsage,
  USAGE_FLOOR_FACTOR,
  TOKENS_PER_IMAGE_ESTIMATE,
  upperBoundTextTokens,
} from './estimate.ts';
import { zeroUsage } from './types.ts';

/**
 * Calibration corpus, checked against the real o200k_base tokenizer. "hard" samples are the known
 * worst cases of a tokenizer-free estimate: random mixed-case base64/JWT (BPE finds almost no merges)
 * and classical Chinese poetry (rare characters, one token or more each).
 */
type Kind = 'english' | 'chinese' | 'mixed' | 'code' | 'json' | 'numbers' | 'emoji' | 'other-language' | 'hard';
const CORPUS: { name: string; kind: Kind; text: string }[] = [
  { name: 'english short', kind: 'english', text: 'Hello! Can you help me write a short email to my landlord about the broken heater?' },
  {
    name: 'english prose',
    kind: 'english',
    text: `The history of the printing press is, in many ways, the history of modern Europe. Before Gutenberg, books were copied by hand, usually by monks working in monasteries, and a single volume could take months to finish. Knowledge travelled slowly and unevenly. After the press spread across the continent in the second half of the fifteenth century, the price of books fell sharply, literacy rose, and ideas that would once have stayed inside a single university could reach thousands of readers within a few years. Historians still argue about how much credit the machine deserves for the Reformation, the Scientific Revolution and the rise of newspapers, but few doubt that it changed the speed at which arguments could be made, answered and remembered.`,
  },
  {
    name: 'english instructions',
    kind: 'english',
    text: `You are a helpful assistant for an online bookstore. Answer questions about orders, shipping times and returns. If the customer asks about something unrelated, politely steer the conversation back. Never reveal internal discount codes. Keep answers under 120 words unless the customer explicitly asks for more detail.`,
  },
  {
    name: 'english technical',
    kind: 'english',
    text: `To configure the reverse proxy, set the upstream timeout to a value larger than the slowest expected response, enable HTTP/2 for client connections, and make sure that buffering is disabled for server-sent events; otherwise the proxy will hold the stream until the whole response is complete, which defeats the purpose of streaming.`,
  },
  {
    name: 'english dialogue',
    kind: 'english',
    text: `"Are you coming tonight?" she asked.\n"I don't know yet," he said. "It depends on whether I finish the report."\n"You've been saying that all week."\n"I know, I know. I'll call you by six, okay?"`,
  },
  { name: 'chinese short', kind: 'chinese', text: '请帮我把这段话翻译成英文，谢谢。' },
  {
    name: 'chinese prose',
    kind: 'chinese',
    text: '人工智能技术在过去十年中取得了飞速的发展。从图像识别到自然语言处理，越来越多的应用开始进入人们的日常生活。与此同时，数据隐私、算法偏见以及就业结构的变化也引发了广泛的讨论。专家认为，政府、企业和学术界需要共同努力，在鼓励创新的同时建立合理的监管框架，确保技术的发展能够真正造福社会。',
  },
  { name: 'chinese classical-ish', kind: 'hard', text: '春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。床前明月光，疑是地上霜。举头望明月，低头思故乡。' },
  {
    name: 'chinese customer service',
    kind: 'chinese',
    text: '您好，您的订单已经发货，预计三到五个工作日送达。如果您在收到商品后发现任何质量问题，可以在七天内申请无理由退货，运费由我们承担。',
  },
  {
    name: 'mixed zh/en',
    kind: 'mixed',
    text: '我们在 production 环境里用的是 Kubernetes 1.29，部署了 3 个 replica，但是 latency 在高峰期会超过 500ms。请问应该先排查 ingress 还是 database connection pool？',
  },
  {
    name: 'mixed en/zh terms',
    kind: 'mixed',
    text: 'Please summarize the following meeting notes: 会议决定下周一上线新版本 (v2.3.1)，QA 需要在周五之前完成回归测试，负责人是张伟。',
  },
  {
    name: 'typescript',
    kind: 'code',
    text: `import { request } from 'undici';\n\nexport async function fetchUser(id: string): Promise<User | undefined> {\n  const res = await request(\`https://api.example.com/users/\${encodeURIComponent(id)}\`, {\n    method: 'GET',\n    headers: { authorization: \`Bearer \${process.env.TOKEN}\` },\n  });\n  if (res.statusCode === 404) return undefined;\n  if (res.statusCode !== 200) throw new Error(\`unexpected status \${res.statusCode}\`);\n  const body = (await res.body.json()) as { user: User };\n  return body.user;\n}\n`,
  },
  {
    name: 'typescript class',
    kind: 'code',
    text: `export class LruCache<K, V> {\n  readonly #map = new Map<K, V>();\n  constructor(private readonly capacityMax: number) {}\n\n  get(key: K): V | undefined {\n    const value = this.#map.get(key);\n    if (value === undefined) return undefined;\n    this.#map.delete(key);\n    this.#map.set(key, value);\n    return value;\n  }\n\n  set(key: K, value: V): void {\n    this.#map.delete(key);\n    this.#map.set(key, value);\n    if (this.#map.size > this.capacityMax) {\n      const oldest = this.#map.keys().next().value as K;\n      this.#map.delete(oldest);\n    }\n  }\n}\n`,
  },
  {
    name: 'python',
    kind: 'code',
    text: `def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:\n    """Merge overlapping intervals and return them sorted."""\n    if not intervals:\n        return []\n    intervals = sorted(intervals, key=lambda x: x[0])\n    merged = [intervals[0]]\n    for start, end in intervals[1:]:\n        last_start, last_end = merged[-1]\n        if start <= last_end:\n            merged[-1] = (last_start, max(last_end, end))\n        else:\n            merged.append((start, end))\n    return merged\n`,
  },
  {
    name: 'json pretty',
    kind: 'json',
    text: JSON.stringify(
      {
        id: 'ord_01HZX3K9',
        status: 'shipped',
        customer: { name: 'Alice Martin', email: 'alice.martin@example.com', tier: 'gold' },
        items: [
          { sku: 'BK-1043', title: 'The Pragmatic Programmer', qty: 1, priceMinor: 3999 },
          { sku: 'BK-2210', title: 'Designing Data-Intensive Applications', qty: 2, priceMinor: 4599 },
        ],
        shipping: { carrier: 'DHL', tracking: 'JD014600006281234567', etaDays: 3 },
        createdAt: '2026-02-14T09:31:05Z',
      },
      null,
      2,
    ),
  },
  {
    name: 'json compact',
    kind: 'json',
    text: JSON.stringify({
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'List three prime numbers.' },
      ],
      temperature: 0.2,
      max_tokens: 50,
      stream: true,
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city'] },
          },
        },
      ],
    }),
  },
  {
    name: 'json schema',
    kind: 'json',
    text: JSON.stringify(
      {
        type: 'object',
        properties: {
          title: { type: 'string', description: 'Short title of the ticket' },
          priority: { type: 'integer', minimum: 1, maximum: 5 },
          labels: { type: 'array', items: { type: 'string' } },
          assignee: { type: ['string', 'null'] },
        },
        required: ['title', 'priority'],
        additionalProperties: false,
      },
      null,
      2,
    ),
  },
  {
    name: 'numbers table',
    kind: 'numbers',
    text: `date,open,high,low,close,volume\n2026-01-02,187.15,188.44,183.89,185.64,82488700\n2026-01-03,184.22,185.88,183.43,184.25,58414500\n2026-01-04,182.15,183.09,180.88,181.91,71983600\n2026-01-05,181.99,182.76,180.17,181.18,62303300\n2026-01-08,182.09,185.60,181.50,185.56,59144500\n`,
  },
  {
    name: 'numbers prose',
    kind: 'numbers',
    text: 'Revenue grew 17.4% year over year to $4,213,907,551, while operating costs rose only 6.2%. The 2,048 new customers added in Q3 brought the total to 91,337, and the average contract value is now 12,480.75 EUR.',
  },
  {
    name: 'emoji chat',
    kind: 'emoji',
    text: "omg that was amazing 😂😂😂 can't wait for next week!! 🎉🎉 bring snacks 🍕🍩 and the good vibes ✨❤️ see you 👋🏽",
  },
  { name: 'emoji heavy', kind: 'emoji', text: '🔥🔥🔥 🚀 to the moon 🌕 👨‍👩‍👧‍👦 family trip 🏖️🌴☀️ 🇫🇷 🇯🇵 🇧🇷 ✅ done ❌ failed ⚠️ warning 🤖💬' },
  {
    name: 'markdown',
    kind: 'english',
    text: `# Release notes\n\n## v2.4.0\n\n- **New:** streaming support for the \`/v1/embeddings\` endpoint.\n- **Fixed:** a race in the connection pool that caused \`ECONNRESET\` under load ([#1423](https://github.com/example/repo/issues/1423)).\n- **Changed:** the default timeout is now 30 s instead of 60 s.\n\n> Upgrade with \`npm install example@2.4.0\`.\n`,
  },
  {
    name: 'log lines',
    kind: 'numbers',
    text: `2026-03-01T12:00:01.123Z INFO  [gateway] req_01HZY7 POST /v1/chat/completions 200 1843ms model=gpt-4o tokens_in=512 tokens_out=128\n2026-03-01T12:00:01.456Z WARN  [router] deployment deepseek-cn-1 unhealthy: 3 consecutive 503s, opening circuit for 30000ms\n2026-03-01T12:00:02.001Z ERROR [charging] reservation rsv_01HZY8 expired before settle (ttlMs=60000)\n`,
  },
  {
    name: 'sql',
    kind: 'code',
    text: `SELECT a.id, a.name, SUM(u.tokens_input + u.tokens_output) AS tokens_total\nFROM accounts a\nJOIN usage_records u ON u.account_id = a.id\nWHERE u.created_at >= '2026-01-01' AND u.created_at < '2026-02-01'\nGROUP BY a.id, a.name\nHAVING SUM(u.tokens_input + u.tokens_output) > 1000000\nORDER BY tokens_total DESC\nLIMIT 20;`,
  },
  {
    name: 'url and ids',
    kind: 'numbers',
    text: 'See https://docs.example.com/api/v2/reference#operation/createPaymentIntent?lang=en and the trace id 4bf92f3577b34da6a3ce929d0e0e4736 for request req_8f14e45fceea167a5a36dedd4bea2543.',
  },
  {
    name: 'french',
    kind: 'other-language',
    text: "Bonjour, je voudrais réserver une chambre pour deux personnes du 12 au 15 mars. Est-ce que le petit-déjeuner est inclus dans le prix ? Merci d'avance pour votre réponse.",
  },
  {
    name: 'russian',
    kind: 'other-language',
    text: 'Здравствуйте! Подскажите, пожалуйста, как изменить адрес доставки для заказа, который уже оплачен? Спасибо.',
  },
  {
    name: 'japanese',
    kind: 'other-language',
    text: 'お世話になっております。来週の打ち合わせの日程について、火曜日の午後三時からでご都合はいかがでしょうか。',
  },
  { name: 'korean', kind: 'other-language', text: '안녕하세요. 주문한 상품이 아직 도착하지 않았습니다. 배송 상황을 확인해 주실 수 있나요?' },
  { name: 'base64', kind: 'hard', text: 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==' },
  { name: 'single word', kind: 'english', text: 'Hi' },
  {
    name: 'long english',
    kind: 'english',
    text: 'The committee reviewed the proposal in detail and asked the authors to clarify the evaluation method, the size of the data set and the way outliers were handled. '.repeat(
      20,
    ),
  },
  {
    name: 'chinese news',
    kind: 'chinese',
    text: '北京时间昨天晚上，国家统计局发布了最新的经济数据。数据显示，今年前三个季度国内生产总值同比增长百分之五点二，消费对经济增长的贡献率继续提高。',
  },
  { name: 'chinese tech', kind: 'chinese', text: '这个函数的作用是把用户输入的字符串转换成数字，如果转换失败就返回默认值。请注意，这里没有处理负数的情况。' },
  { name: 'chinese question', kind: 'chinese', text: '你觉得明天会下雨吗？我想去爬山，但是又怕路滑。' },
  {
    name: 'go',
    kind: 'code',
    text: `func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {\n\tctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)\n\tdefer cancel()\n\tuser, err := s.store.GetUser(ctx, r.URL.Query().Get("id"))\n\tif err != nil {\n\t\thttp.Error(w, err.Error(), http.StatusInternalServerError)\n\t\treturn\n\t}\n\tjson.NewEncoder(w).Encode(user)\n}\n`,
  },
  {
    name: 'yaml',
    kind: 'code',
    text: `server:\n  port: 8080\n  host: 0.0.0.0\nproviders:\n  - name: deepseek\n    adapter: openai-compatible\n    baseUrl: https://api.deepseek.com/v1\n    apiKey: \${DEEPSEEK_API_KEY}\n  - name: google\n    adapter: gemini\n    baseUrl: https://generativelanguage.googleapis.com\n`,
  },
  {
    name: 'html',
    kind: 'code',
    text: `<div class="card">\n  <h2 class="card-title">Pricing</h2>\n  <p>Starter plan: <strong>$9/month</strong> for 1M tokens.</p>\n  <a href="/signup?plan=starter" class="btn btn-primary">Sign up</a>\n</div>\n`,
  },
  {
    name: 'shell',
    kind: 'code',
    text: `#!/usr/bin/env bash\nset -euo pipefail\nfor f in src/**/*.ts; do\n  echo "checking $f"\n  grep -n "TODO" "$f" || true\ndone\nnpm run typecheck && npm test -- --test-concurrency=2\n`,
  },
  {
    name: 'english email',
    kind: 'english',
    text: `Hi Sarah,\n\nThanks for sending over the contract so quickly. I've gone through it with our legal team and we only have two small comments: the payment terms in section 4 should be 30 days rather than 15, and we'd like the termination clause to include a 60-day notice period. Otherwise everything looks good, and we're happy to sign once those are updated.\n\nBest regards,\nTom`,
  },
  { name: 'jwt', kind: 'hard', text: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ' },
  { name: 'greek', kind: 'other-language', text: 'Ελπίζω να είστε καλά. Θα ήθελα να κλείσω ένα τραπέζι.' },
  { name: 'arabic', kind: 'other-language', text: 'مرحبا، كيف حالك اليوم؟ أريد أن أحجز طاولة لشخصين.' },
  { name: 'hindi', kind: 'other-language', text: 'नमस्ते, मैं अपने ऑर्डर की स्थिति जानना चाहता हूँ।' },
  {
    name: 'legal',
    kind: 'english',
    text: 'Notwithstanding any other provision of this Agreement, neither party shall be liable to the other for any indirect, incidental, consequential, special or exemplary damages arising out of or related to this Agreement, including but not limited to loss of revenue, profits or data, even if advised of the possibility of such damages.',
  },
  {
    name: 'casual',
    kind: 'english',
    text: 'lol yeah i saw that too, honestly idk why they changed the ui again. the old one was fine?? anyway wanna grab lunch tmrw around 1',
  },
  {
    name: 'zh wiki',
    kind: 'chinese',
    text: '长城是中国古代的军事防御工程，始建于春秋战国时期，历代均有修筑。现存的长城遗迹主要为明代所建，东起山海关，西至嘉峪关，全长约六千多公里。一九八七年，长城被列入世界文化遗产名录。',
  },
  { name: 'zh chat', kind: 'chinese', text: '哈哈，你说得对！那我们周六下午三点在咖啡店见吧，记得带上电脑，我们一起把方案改完。' },
  {
    name: 'rust',
    kind: 'code',
    text: `impl<T: Ord> BinaryHeap<T> {\n    pub fn push(&mut self, item: T) {\n        self.data.push(item);\n        let mut idx = self.data.len() - 1;\n        while idx > 0 {\n            let parent = (idx - 1) / 2;\n            if self.data[idx] <= self.data[parent] { break; }\n            self.data.swap(idx, parent);\n            idx = parent;\n        }\n    }\n}\n`,
  },
  {
    name: 'java',
    kind: 'code',
    text: `@RestController\n@RequestMapping("/api/orders")\npublic class OrderController {\n    private final OrderService orderService;\n\n    public OrderController(OrderService orderService) {\n        this.orderService = orderService;\n    }\n\n    @GetMapping("/{id}")\n    public ResponseEntity<OrderDto> getOrder(@PathVariable Long id) {\n        return orderService.findById(id)\n            .map(ResponseEntity::ok)\n            .orElseGet(() -> ResponseEntity.notFound().build());\n    }\n}\n`,
  },
  {
    name: 'css',
    kind: 'code',
    text: `.card {\n  display: flex;\n  flex-direction: column;\n  gap: 12px;\n  padding: 16px 24px;\n  border-radius: 8px;\n  box-shadow: 0 1px 3px rgba(0, 0, 0, 0.12), 0 1px 2px rgba(0, 0, 0, 0.24);\n}\n@media (max-width: 600px) {\n  .card { padding: 8px; }\n}\n`,
  },
  {
    name: 'json numbers',
    kind: 'json',
    text: JSON.stringify({
      embedding: [0.0123, -0.4567, 0.891, 0.00042, -0.3333, 0.5, 0.125, -0.9876, 0.4444, 0.101],
      ids: [10293, 88812, 3, 4001, 77],
      ok: true,
    }),
  },
  {
    name: 'json openai response',
    kind: 'json',
    text: JSON.stringify(
      {
        id: 'chatcmpl-9x8y7z',
        object: 'chat.completion',
        created: 1767225600,
        model: 'gpt-4o-2024-08-06',
        choices: [{ index: 0, message: { role: 'assistant', content: 'The capital of France is Paris.' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 14, completion_tokens: 7, total_tokens: 21 },
      },
      null,
      2,
    ),
  },
  {
    name: 'mixed zh code',
    kind: 'mixed',
    text: '把下面的代码改成 async/await 写法：\n\nfunction load(cb) {\n  fs.readFile("a.txt", "utf8", (err, data) => cb(err, data));\n}\n\n要求：不要用第三方库，错误要抛出来。',
  },
  {
    name: 'german',
    kind: 'other-language',
    text: 'Sehr geehrte Damen und Herren, hiermit kündige ich meinen Vertrag fristgerecht zum nächstmöglichen Zeitpunkt. Bitte bestätigen Sie mir den Eingang dieser Kündigung schriftlich.',
  },
  {
    name: 'spanish',
    kind: 'other-language',
    text: '¿Podrías recomendarme un restaurante tranquilo cerca del centro? Preferiblemente con opciones vegetarianas y que no sea demasiado caro.',
  },
  {
    name: 'recipe',
    kind: 'english',
    text: 'Preheat the oven to 200°C. Toss the potatoes with olive oil, salt and rosemary, spread them on a baking tray and roast for 35–40 minutes, turning once, until golden and crisp.',
  },
  {
    name: 'support reply',
    kind: 'english',
    text: "I'm sorry to hear your package arrived damaged. I've issued a full refund to your original payment method; it should appear within 5-7 business days. You don't need to return the item.",
  },
  {
    name: 'zh policy',
    kind: 'chinese',
    text: '为进一步优化营商环境，本市将简化企业开办流程，推行“一网通办”，企业登记时间压缩至一个工作日以内，并对小微企业给予房租减免和税收优惠。',
  },
  {
    name: 'zh novel',
    kind: 'chinese',
    text: '雨下了一整夜。天亮的时候，她推开窗，看见院子里的梧桐叶落了一地，湿漉漉地贴在青石板上。远处传来卖豆浆的吆喝声，一声长，一声短。',
  },
  { name: 'zh prompt', kind: 'chinese', text: '你是一名资深的产品经理。请根据下面的用户反馈，总结出三个最重要的问题，并给出改进建议，每条不超过五十字。' },
  {
    name: 'kotlin',
    kind: 'code',
    text: `data class User(val id: Long, val name: String, val email: String?)\n\nfun List<User>.withEmail(): List<User> = filter { !it.email.isNullOrBlank() }\n\nsuspend fun loadUsers(api: UserApi): List<User> = withContext(Dispatchers.IO) {\n    api.fetchAll().withEmail().sortedBy { it.name }\n}\n`,
  },
  {
    name: 'c',
    kind: 'code',
    text: `#include <stdio.h>\n\nint main(int argc, char **argv) {\n    int sum = 0;\n    for (int i = 1; i < argc; i++) {\n        sum += atoi(argv[i]);\n    }\n    printf("sum = %d\\n", sum);\n    return 0;\n}\n`,
  },
  {
    name: 'json tool args',
    kind: 'json',
    text: JSON.stringify({
      query: 'best budget noise cancelling headphones 2026',
      filters: { priceMaxUsd: 150, brands: ['Sony', 'Anker', 'JBL'], inStock: true },
      limit: 10,
      sort: 'rating_desc',
    }),
  },
  {
    name: 'json log',
    kind: 'json',
    text: JSON.stringify({
      level: 'error',
      time: 1767225600123,
      pid: 4211,
      hostname: 'gw-eu-1',
      reqId: 'req_01J2ZK',
      msg: 'upstream timeout',
      provider: 'gemini',
      model: 'gemini-2.5-flash',
      timeoutMs: 30000,
    }),
  },
  { name: 'mixed zh en product', kind: 'mixed', text: '新版 iPhone 17 Pro 搭载 A19 芯片，支持 Wi-Fi 7 和 USB-C 40Gbps 传输，起售价 7999 元。' },
  {
    name: 'numbers list',
    kind: 'numbers',
    text: '1. 3.14159265\n2. 2.71828183\n3. 1.41421356\n4. 1.61803399\n5. 0.57721566\n6. 4.66920160\n7. 2.50290787\n8. 1.20205690\n',
  },
  { name: 'emoji tweet', kind: 'emoji', text: 'Just shipped v3 🚢🎉 huge thanks to everyone who tested the beta 🙏 more soon 👀 #buildinpublic' },
  {
    name: 'portuguese',
    kind: 'other-language',
    text: 'Olá! Gostaria de saber se vocês fazem entregas aos sábados e qual é o prazo para encomendas feitas pelo site.',
  },
  {
    name: 'markdown table',
    kind: 'numbers',
    text: '| Model | Input $/M | Output $/M |\n|---|---:|---:|\n| gpt-4o | 2.50 | 10.00 |\n| claude-sonnet | 3.00 | 15.00 |\n| gemini-2.5-flash | 0.30 | 2.50 |\n',
  },
];

const RATIO_MIN = 0.9;
const RATIO_MIN_HARD = 0.8;
const RATIO_MAX = 1.4;
/** Short texts round to whole tokens: a sample within this many tokens of the truth passes the upper bound. */
const TOKENS_SLACK_SHORT = 2;

const measured = CORPUS.map((s) => ({ ...s, actual: encode(s.text).length, estimate: estimateTextTokens(s.text) }));

describe('estimateTextTokens against o200k_base', () => {
  test('every ordinary sample is estimated at 0.9x to 1.4x its real token count', (t) => {
    for (const s of measured) {
      const ratio = s.estimate / s.actual;
      t.diagnostic(
        `${s.kind.padEnd(14)} ${s.name.padEnd(24)} actual ${String(s.actual).padStart(4)} estimate ${String(s.estimate).padStart(4)} ratio ${ratio.toFixed(2)}`,
      );
      assert.ok(ratio >= (s.kind === 'hard' ? RATIO_MIN_HARD : RATIO_MIN), `${s.name}: ${s.estimate} vs ${s.actual}`);
      assert.ok(ratio <= RATIO_MAX || s.estimate - s.actual <= TOKENS_SLACK_SHORT, `${s.name}: ${s.estimate} vs ${s.actual}`);
    }
  });

  test('each kind of text, and the corpus as a whole, is estimated at 1.0x to 1.3x', (t) => {
    const kinds = new Map<string, { actual: number; estimate: number }>();
    for (const s of measured) {
      const k = kinds.get(s.kind) ?? { actual: 0, estimate: 0 };
      k.actual += s.actual;
      k.estimate += s.estimate;
      kinds.set(s.kind, k);
    }
    for (const [kind, k] of kinds) {
      const ratio = k.estimate / k.actual;
      t.diagnostic(`${kind.padEnd(14)} ratio ${ratio.toFixed(3)}`);
      if (kind !== 'hard') assert.ok(ratio >= 1.0 && ratio <= 1.3, `${kind}: ${ratio}`);
    }
    const actual = measured.reduce((n, s) => n + s.actual, 0);
    const estimate = measured.reduce((n, s) => n + s.estimate, 0);
    t.diagnostic(`all ${measured.length} samples: actual ${actual} estimate ${estimate} ratio ${(estimate / actual).toFixed(3)}`);
    assert.ok(estimate / actual >= 1.0 && estimate / actual <= 1.3);
  });

  test('the corpus has at least 20 samples covering every kind', () => {
    assert.ok(CORPUS.length >= 20);
    for (const kind of ['english', 'chinese', 'mixed', 'code', 'json', 'numbers', 'emoji'] as const) {
      assert.ok(
        CORPUS.some((s) => s.kind === kind),
        kind,
      );
    }
  });

  test('the empty string is zero tokens and any other text a positive whole number', () => {
    assert.equal(estimateTextTokens(''), 0);
    for (const s of [' ', '\n', '\uDC00', '\u200D']) assert.ok(estimateTextTokens(s) >= 1 && estimateTextTokens(s) <= 2, JSON.stringify(s));
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => {
        const n = estimateTextTokens(s);
        return Number.isSafeInteger(n) && n >= 0 && (s.length === 0 || n > 0);
      }),
      { numRuns: 300, seed: 20260301 },
    );
  });
});

describe('estimateTextTokens: the lowercase-run shortcut', () => {
  test('gives exactly what the general per-character step gives', () => {
    for (const { text } of CORPUS) assert.equal(estimateTextTokens(text), estimateTextTokens(text, false), text.slice(0, 40));
    // Characters around every transition the shortcut skips over: capitals, extended letters, digits, CJK, emoji.
    const unit = fc.constantFrom(
      'a',
      'b',
      'q',
      'z',
      '`',
      '{',
      'A',
      'M',
      'Z',
      '@',
      '[',
      'é',
      'É',
      'ж',
      'Ж',
      ' ',
      '  ',
      '\n',
      '1',
      '.',
      '中',
      'か',
      '😀',
      '\u200d',
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 60 }), (s) => assert.equal(estimateTextTokens(s), estimateTextTokens(s, false), JSON.stringify(s))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => assert.equal(estimateTextTokens(s), estimateTextTokens(s, false))),
      { numRuns: 500 },
    );
  });
});

describe('upperBoundTextTokens', () => {
  test('is the UTF-8 byte length, lone surrogates counted as U+FFFD', () => {
    for (const s of ['', 'abc', 'é', '你好', '😀', 'a\uD800b', '\uDC00']) {
      assert.equal(upperBoundTextTokens(s), new TextEncoder().encode(s).length, JSON.stringify(s));
    }
  });

  test('is never below the real o200k count, for the corpus and for random text', () => {
    for (const s of measured) assert.ok(upperBoundTextTokens(s.text) >= s.actual, s.name);
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 120 }), (s) => upperBoundTextTokens(s) >= encode(s).length),
      { numRuns: 300, seed: 20260301 },
    );
  });
});

describe('estimateChatInputTokens', () => {
  const chat: ChatRequest = {
    model: 'gpt-4o',
    stream: false,
    includeUsage: true,
    extra: {},
    messages: [
      { role: 'system', content: [{ type: 'text', text: 'You are a helpful assistant for an online bookstore. Keep answers short.' }] },
      { role: 'user', content: [{ type: 'text', text: 'Where is my order ord_01HZX3K9? It was supposed to arrive yesterday.' }] },
      {
        role: 'assistant',
        content: [{ type: 'text', text: 'Let me check that for you. Your order shipped with DHL on Monday; the tracking number is JD014600006281234567.' }],
      },
      { role: 'user', content: [{ type: 'text', text: '我能改成送到公司地址吗？' }] },
    ],
  };

  test('covers the real o200k count of the conversation in chat format', () => {
    const actual = encodeChat(
      chat.messages.map((m) => ({
        role: m.role as 'system' | 'user' | 'assistant',
        content: m.content.map((p) => (p.type === 'text' ? p.text : '')).join(''),
      })),
      'gpt-4o',
    ).length;
    const estimate = estimateChatInputTokens(chat);
    assert.ok(estimate >= actual && estimate <= actual * 1.4, `${estimate} vs ${actual}`);
  });

  test('each image adds the fixed per-image cost', () => {
    const withImages: ChatRequest = {
      ...chat,
      messages: [
        ...chat.messages.slice(0, -1),
        {
          role: 'user',
          content: [
            ...(chat.messages.at(-1)?.content ?? []),
            { type: 'image', url: 'https://example.com/a.png' },
            { type: 'image', url: 'data:image/png;base64,iVBORw0KGgo=' },
          ],
        },
      ],
    };
    assert.equal(estimateChatInputTokens(withImages) - estimateChatInputTokens(chat), 2 * TOKENS_PER_IMAGE_ESTIMATE);
  });

  test('tool definitions, tool calls and tool results are counted, and cover the JSON schema text', () => {
    const parameters = {
      type: 'object',
      properties: { orderId: { type: 'string', description: 'The order id, e.g. ord_01HZX3K9' }, address: { type: 'string' } },
      required: ['orderId', 'address'],
    };
    const withTools: ChatRequest = {
      ...chat,
      tools: [{ name: 'change_address', description: 'Change the delivery address of an order that has not been delivered yet.', parameters }],
      messages: [
        ...chat.messages,
        {
          role: 'assistant',
          content: [
            { type: 'tool_call', id: 'call_1', name: 'change_address', argumentsJson: '{"orderId":"ord_01HZX3K9","address":"上海市浦东新区世纪大道100号"}' },
          ],
        },
        { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_1', content: '{"ok":true,"etaDays":2}' }] },
      ],
    };
    const added = estimateChatInputTokens(withTools) - estimateChatInputTokens(chat);
    const schemaAndCalls =
      encode(JSON.stringify(parameters)).length +
      encode('{"orderId":"ord_01HZX3K9","address":"上海市浦东新区世纪大道100号"}').length +
      encode('{"ok":true,"etaDays":2}').length;
    assert.ok(added >= schemaAndCalls, `${added} vs ${schemaAndCalls}`);
  });

  test('a JSON schema response format is counted', () => {
    const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };
    const withSchema: ChatRequest = { ...chat, responseFormat: { type: 'json_schema', name: 'a', schema } };
    assert.ok(estimateChatInputTokens(withSchema) - estimateChatInputTokens(chat) >= encode(JSON.stringify(schema)).length);
  });
});

describe('TextMeter: the stream meter over accumulated text (issue 12, finding 4)', () => {
  const prose = CORPUS.filter((c) => c.kind === 'english')
    .map((c) => c.text)
    .join(' ');
  const chunks = (text: string, re: RegExp): string[] => text.split(re).filter((x) => x.length > 0);

  test('one-word chunks of English prose are metered within 3 % of o200k (per-chunk estimates gave about double)', () => {
    const m = new TextMeter();
    for (const c of chunks(prose, /(?= )/)) m.add(c);
    const real = encode(prose).length;
    const perChunk = chunks(prose, /(?= )/).reduce((n, c) => n + estimateTextTokens(c), 0);
    assert.ok(Math.abs(m.tokens - real) <= real * 0.03, `meter ${m.tokens} vs o200k ${real}`);
    assert.ok(perChunk > real * 1.5, `the old per-chunk sum ${perChunk} overcounted o200k ${real}`);
  });

  test('any chunking of any text meters the same as the whole text, give or take a token per 128-character CJK run', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom(' ', '\n', 'the', 'Grid', '数据', '!', '42', 'é'), fc.string({ maxLength: 6 })), { maxLength: 60 }),
        fc.array(fc.nat(8), { minLength: 1, maxLength: 60 }),
        (parts, cuts) => {
          const text = parts.join('');
          const m = new TextMeter();
          let i = 0;
          let k = 0;
          while (i < text.length) {
            const len = 1 + (cuts[k++ % cuts.length] ?? 0);
            m.add(text.slice(i, i + len));
            i += len;
          }
          const whole = meterTextTokens(text);
          // A chunk boundary inside a word or a run can cost up to one token more or less per chunk without spaces.
          assert.ok(Math.abs(m.tokens - whole) <= 2 + Math.ceil(text.length / 4), `meter ${m.tokens} vs whole ${whole} for ${JSON.stringify(text)}`);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('one-word chunks meter exactly the whole text', () => {
    const m = new TextMeter();
    for (const c of chunks(prose, /(?= )/)) m.add(c);
    assert.equal(m.tokens, Math.ceil(rawTextTokens(prose) - 1e-9));
  });
});

describe('boundTextTokens: the input hold (issue 12, finding 3)', () => {
  test('CJK text is bounded by its UTF-8 bytes, which a byte-level tokenizer never exceeds', () => {
    const zh = '数据中心的调度系统需要在高并发条件下保持计费一致性，'.repeat(20);
    const b = boundTextTokens(zh, estimateTextTokens(zh));
    assert.ok(b >= upperBoundTextTokens(zh), `bound ${b} >= bytes ${upperBoundTextTokens(zh)}`);
    assert.ok(estimateTextTokens(zh) < upperBoundTextTokens(zh), 'the plain estimate alone would be below the byte count');
  });

  test("ASCII prose stays within the bound's 2-token slack of the estimate; mixed text adds its non-ASCII bytes", () => {
    const en = 'plain English words only';
    assert.ok(boundTextTokens(en, estimateTextTokens(en)) <= estimateTextTokens(en) + 2);
    const long = 'The history of the printing press is, in many ways, the history of modern Europe and of its readers.';
    assert.equal(boundTextTokens(long, estimateTextTokens(long)), estimateTextTokens(long));
    const mixed = `${long} 数据`;
    assert.equal(boundTextTokens(mixed, estimateTextTokens(mixed)), Math.min(upperBoundTextTokens(mixed), estimateTextTokens(mixed) + 6));
  });

  test('every corpus text: the bound is at least the estimate and at least o200k (base64, JWT and tables included)', () => {
    for (const c of CORPUS) {
      const e = estimateTextTokens(c.text);
      const b = boundTextTokens(c.text, e);
      assert.ok(b >= e, c.name);
      assert.ok(b >= encode(c.text).length, `${c.name}: bound ${b} >= o200k ${encode(c.text).length}`);
    }
  });

  test('holds for English prose stay close to the estimate (at most 1.1x over the English corpus)', () => {
    let e = 0;
    let b = 0;
    for (const c of CORPUS.filter((x) => x.kind === 'english')) {
      const est = estimateTextTokens(c.text);
      e += est;
      b += boundTextTokens(c.text, est);
    }
    assert.ok(b <= e * 1.1, `bound ${b} vs estimate ${e}`);
  });
});

describe('boundTextTokens on any ASCII text (issue 12 attack report F7)', () => {
  const LOWER = 'abcdefghijklmnopqrstuvwxyz';
  const PUNCT = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
  const DIGITS = '0123456789';
  const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
  const alphabets: Record<string, string> = {
    letters: LOWER + LOWER.toUpperCase(),
    lowercase: LOWER,
    digits: DIGITS,
    punctuation: PUNCT,
    whitespace: ' \n\t\r' + LOWER,
    base64: LOWER + LOWER.toUpperCase() + DIGITS + '+/=',
    printable: PRINTABLE + '\n\t',
    'punctuation and digits': PUNCT + DIGITS + ' ',
    'words and symbols': LOWER + '    ' + PUNCT,
  };
  for (const [name, alphabet] of Object.entries(alphabets)) {
    test(`random ${name}: the bound is at least the o200k count (property)`, () => {
      const text = fc.string({ unit: fc.constantFrom(...alphabet.split('')), maxLength: 400 });
      fc.assert(
        fc.property(text, (s) => {
          const b = boundTextTokens(s, estimateTextTokens(s));
          assert.ok(b >= encode(s).length, `${JSON.stringify(s)}: bound ${b} < o200k ${encode(s).length}`);
        }),
        { numRuns: 300, seed: 20261207 },
      );
    });
  }

  test('the attack prompt: 20,000 random punctuation characters are held at or above their o200k count (was 1/3 of it)', () => {
    let x = 7;
    let s = '';
    for (let i = 0; i < 20_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      s += PUNCT[(x >>> 8) % PUNCT.length];
    }
    const real = encode(s).length;
    assert.ok(estimateTextTokens(s) < real / 2, 'the estimate alone is far below');
    assert.ok(boundTextTokens(s, estimateTextTokens(s)) >= real);
  });
});

describe('boundTextTokens: chat requests', () => {
  test('chatInputTokens gives the same estimate as estimateChatInputTokens', () => {
    const req: ChatRequest = { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: '你好, world' }] }] } as ChatRequest;
    assert.equal(chatInputTokens(req).estimate, estimateChatInputTokens(req));
    assert.ok(chatInputTokens(req).bound > chatInputTokens(req).estimate);
  });
});

describe('cutTextAtTokens', () => {
  test('the cut fits the budget and is a prefix ending at a word boundary', () => {
    const text = CORPUS[1]!.text;
    for (const budget of [1, 5, 17, 60]) {
      const cut = cutTextAtTokens(text, budget);
      assert.ok(text.startsWith(cut));
      assert.ok(meterTextTokens(cut) <= budget, `${meterTextTokens(cut)} <= ${budget}`);
      assert.ok(cut.length === text.length || text[cut.length] === ' ', 'ends before a space');
    }
    assert.equal(cutTextAtTokens(text, 100_000), text);
  });
});

describe('floorUsage: reported usage far below the gateway estimate is raised (issue 12 attack report F8)', () => {
  test('an honest report stands: the same object, nothing floored', () => {
    const u = { ...zeroUsage(), tokensInput: 900, tokensOutput: 80 };
    const f = floorUsage(u, 1000, 100);
    assert.equal(f.usage, u);
    assert.equal(f.floored, undefined);
  });

  test('1 input token reported for a floor base of 17,540 is charged 0.7 of it; output too', () => {
    const f = floorUsage({ ...zeroUsage(), tokensInput: 1, tokensOutput: 1 }, 17_540, 300);
    assert.equal(USAGE_FLOOR_FACTOR, 0.7);
    assert.equal(f.usage.tokensInput, 12_278);
    assert.equal(f.usage.tokensOutput, 210);
    assert.equal(f.floored, 'input+output');
  });

  test('prompt caching is legitimate: the floor is on total input, cached tokens stay as reported', () => {
    // 9,000 of 10,000 prompt tokens read from the cache: the total is above the floor, nothing changes.
    const cached = { ...zeroUsage(), tokensInput: 10_000, tokensCachedInput: 9_000, tokensOutput: 50 };
    assert.equal(floorUsage(cached, 10_000, 50).usage, cached);
    // A total below the floor is raised; the cached subset stays, the uncached part grows.
    const low = floorUsage({ ...zeroUsage(), tokensInput: 3_000, tokensCachedInput: 2_500, tokensCacheWrite: 400, tokensOutput: 50 }, 10_000, 50);
    assert.deepEqual(low.usage, { ...zeroUsage(), tokensInput: 7_000, tokensCachedInput: 2_500, tokensCacheWrite: 400, tokensOutput: 50 });
    assert.equal(low.floored, 'input');
  });

  test('the floor never raises an estimate-sized report and never lowers a report (property)', () => {
    fc.assert(
      fc.property(fc.nat(100_000), fc.nat(100_000), fc.nat(100_000), fc.nat(50_000), (inp, out, est, delivered) => {
        const u = { ...zeroUsage(), tokensInput: inp, tokensOutput: out };
        const f = floorUsage(u, est, delivered).usage;
        assert.ok(f.tokensInput >= inp && f.tokensOutput >= out);
        assert.ok(f.tokensInput >= Math.ceil(est * 0.7) && f.tokensOutput >= Math.ceil(delivered * 0.7));
        if (inp >= est && out >= delivered) assert.equal(f, u);
      }),
    );
  });
});

describe('the usage floor base (attack round 2 N2): punctuation is floored near its o200k count, honest text is not', () => {
  const PUNCT = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
  const floorOf = (s: string): number => Math.ceil(floorTextTokens(s, estimateTextTokens(s)) * USAGE_FLOOR_FACTOR);

  test('English, code, JSON and numbers: the floor stays at or below the o200k count (Rust within 4 %)', () => {
    for (const c of CORPUS.filter((x) => ['english', 'code', 'json', 'numbers'].includes(x.kind))) {
      const real = encode(c.text).length;
      if (real < 5) continue; // a one-token text rounds up
      assert.ok(floorOf(c.text) <= Math.ceil(real * 1.04), `${c.name}: floor ${floorOf(c.text)} > o200k ${real}`);
    }
  });

  test('Chinese and other scripts are floored on the estimate, not on their UTF-8 bytes', () => {
    for (const c of CORPUS.filter((x) => x.kind === 'chinese' || x.kind === 'other-language')) {
      const e = estimateTextTokens(c.text);
      const real = encode(c.text).length;
      assert.ok(floorOf(c.text) <= real, `${c.name}: floor ${floorOf(c.text)} > o200k ${real}`);
      assert.ok(floorTextTokens(c.text, e) < boundTextTokens(c.text, e), `${c.name}: the floor base is below the byte-level hold`);
    }
  });

  test('the 60,000-character punctuation prompt of the report is floored at >= 0.8x o200k (was 0.17x)', () => {
    const s = Array.from({ length: 60_000 }, (_, i) => '!@#$%^&*()_+{}|:<>?~`-=[];,./'[(i * 7) % 29]).join('');
    const real = encode(s).length;
    assert.ok(floorOf(s) >= 0.8 * real, `floor ${floorOf(s)} for o200k ${real}`);
    assert.ok(Math.ceil(estimateTextTokens(s) * 0.5) < 0.2 * real, 'the old floor (half the estimate) was below 0.2x');
  });

  test('uniformly random punctuation: the floor is at least 0.75x the o200k count (property over seeds and lengths)', () => {
    // Uniform draws, as an attacker without a tokenizer sends; hand-picked runs ("!!" pairs) go a little lower.
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 30 }), fc.integer({ min: 200, max: 3000 }), (seed, n) => {
        let x = seed;
        let s = '';
        for (let i = 0; i < n; i++) {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          s += PUNCT[(x >>> 8) % PUNCT.length];
        }
        assert.ok(floorOf(s) >= 0.75 * encode(s).length, `${floorOf(s)} < 0.75 x ${encode(s).length}`);
      }),
      { numRuns: 100, seed: 20261207 },
    );
  });

  test('the floor base is never below the estimate nor above the ASCII bound plus the estimate (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const e = estimateTextTokens(s);
        const f = floorTextTokens(s, e);
        assert.ok(f >= e);
        assert.ok(f <= Math.max(e, asciiBoundTokens(s)));
      }),
      { numRuns: 300, seed: 20261207 },
    );
  });
});
