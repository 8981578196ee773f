/**
 * Generates bench/workloads/cost.jsonl, the workload of `npm run bench -- cost` (issue 17): synthetic traffic
 * modelled on described agent traffic, deterministic (seeded), checked in next to this script. See README.md.
 *
 *   node --import tsx bench/workloads/generate-cost.ts [--seed 17] [--out bench/workloads/cost.jsonl]
 *
 * One JSON object per line: a `meta` line, then `session` lines. A session is one conversation in OpenAI chat
 * format (`messages`, optional `tools`) and the requests replayed from it: request k sends the first `upTo`
 * messages (an agent loop's request is its transcript so far), and passes when the answer contains `expect`.
 * Answers are checkable because the emulator answers deterministically from what it receives (with the
 * `recall` directive: `[recall NAME]` is answered with the last `NAME=VALUE` of the context; a last message that
 * is a tool result is answered `The tool returned: <its first 200 characters>`), so a request whose needed
 * context did not reach the model fails its check.
 */
import { writeFileSync } from 'node:fs';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
};

/** mulberry32: a small seeded PRNG, so the file is a function of the seed alone. */
function rng(seed: number): { next(): number; int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), pick: (xs) => xs[Math.floor(next() * xs.length)]! };
}

type Msg = Record<string, unknown>;
interface Request {
  upTo: number;
  expect: string;
}
interface Session {
  type: 'session';
  id: string;
  kind: 'chat' | 'agent' | 'coding';
  /** In the --quick subset. */
  quick: boolean;
  model: string;
  /** Whether model: "auto:cheap" may replace the named model (the workload allows it: not for coding on a premium model). */
  autoOk: boolean;
  temperature: number;
  maxTokens: number;
  tools?: unknown[];
  messages: Msg[];
  requests: Request[];
}

const seed = Number(arg('seed', '17'));
const out = arg('out', new URL('./cost.jsonl', import.meta.url).pathname);
const r = rng(seed);

const WORDS = ['module', 'value', 'config', 'request', 'handler', 'buffer', 'result', 'index', 'error', 'token', 'stream', 'cache', 'record', 'limit'];
const MODULES = ['billing', 'charging', 'gateway', 'routing', 'wire', 'catalog', 'accounts', 'store'];
const FILES = ['periods', 'renew', 'orders', 'meter', 'plan', 'estimate', 'deploy', 'limits', 'buckets', 'ledger'];

const ident = (): string => `${r.pick(WORDS)}${r.pick(['Count', 'Id', 'Ms', 'Bytes', 'State', 'Map', 'List'])}`;
const path = (): string => `src/${r.pick(MODULES)}/${r.pick(FILES)}.ts`;

/** A code file of about `chars` characters, with `facts` (NAME=VALUE lines) placed inside it. */
function codeFile(name: string, chars: number, facts: string[] = []): string {
  const lines = [`// ${name}`];
  let size = lines[0]!.length;
  const at = new Set(facts.map(() => r.int(3, Math.max(4, Math.floor(chars / 60)))));
  let i = 0;
  let f = 0;
  while (size < chars) {
    const l =
      at.has(i) && f < facts.length
        ? `export const ${facts[f++]!.replace('=', ' = ')}; // ${facts[f - 1]}`
        : r.pick([
            `  const ${ident()} = ${ident()}(${r.int(0, 99)});`,
            `  if (${ident()} > ${r.int(1, 500)}) return ${ident()};`,
            `export function ${ident()}(${ident()}: number): number {`,
            `  for (const ${r.pick(['x', 'k', 'b'])} of ${ident()}) ${ident()}.push(${r.pick(['x', 'k', 'b'])});`,
            '}',
            `  // ${r.pick(WORDS)} ${r.pick(WORDS)} ${r.pick(WORDS)}`,
          ]);
    lines.push(l);
    size += l.length + 1;
    i++;
  }
  while (f < facts.length) lines.push(`export const ${facts[f]!.replace('=', ' = ')}; // ${facts[f++]}`);
  return lines.join('\n');
}

/** A test or build log of about `chars` characters, with `facts` placed in its middle. */
function logOutput(chars: number, facts: string[] = [], mention?: string): string {
  const lines: string[] = [];
  let size = 0;
  const mid = Math.floor(chars / 2);
  let placed = false;
  while (size < chars) {
    if (!placed && size >= mid) {
      for (const fact of facts) lines.push(`info: ${fact}`);
      placed = true;
    }
    const l = r.pick([
      `PASS ${path()} (${r.int(2, 900)} ms)`,
      `  ✓ ${r.pick(WORDS)} ${r.pick(WORDS)} ${r.pick(['settles', 'renews', 'rounds up', 'refuses', 'streams'])} (${r.int(1, 80)} ms)`,
      `warning: unused variable '${ident()}' at ${path()}:${r.int(1, 400)}`,
      `[${r.int(10, 59)}:${r.int(10, 59)}.${r.int(100, 999)}] compiled ${r.int(1, 60)} modules in ${r.int(10, 999)} ms`,
      mention !== undefined && r.next() < 0.02 ? `FAIL ${mention}` : `  ✓ ${r.pick(WORDS)} ${r.pick(WORDS)} (${r.int(1, 80)} ms)`,
    ]);
    lines.push(l);
    size += l.length + 1;
  }
  if (!placed) for (const fact of facts) lines.push(`info: ${fact}`);
  return lines.join('\n');
}

const TOOLS = [
  { name: 'bash', description: 'Run a shell command in the repository and return its output.', props: { command: { type: 'string' } }, req: ['command'] },
  { name: 'read_file', description: 'Read a file of the repository.', props: { path: { type: 'string' } }, req: ['path'] },
  {
    name: 'grep',
    description: 'Search the repository for a regular expression.',
    props: { pattern: { type: 'string' }, path: { type: 'string' } },
    req: ['pattern'],
  },
  { name: 'run_tests', description: 'Run the test suite, or the tests of one file.', props: { file: { type: 'string' } }, req: [] },
  {
    name: 'edit_file',
    description: 'Replace a range of lines of a file.',
    props: { path: { type: 'string' }, patch: { type: 'string' } },
    req: ['path', 'patch'],
  },
].map((t) => ({
  type: 'function',
  function: { name: t.name, description: t.description, parameters: { type: 'object', properties: t.props, required: t.req } },
}));

const AGENT_SYSTEM = [
  'You are TokenGrid Coder, an autonomous software engineering agent working in a TypeScript repository.',
  'Work in small steps: read before you edit, run the tests after every change, and never invent file contents.',
  'Tool outputs can be long; quote only what you need. When the task is done, summarise what you changed.',
  ...Array.from(
    { length: 24 },
    (_, i) =>
      `Rule ${i + 1}: ${r.pick(WORDS)} ${r.pick(WORDS)} must be ${r.pick(['checked', 'logged', 'kept', 'tested'])} before ${r.pick(WORDS)} ${r.pick(WORDS)}.`,
  ),
].join('\n');

const sessions: Session[] = [];
const recallId = (prefix: string): string => `${prefix}-${r.int(10000, 99999)}`;

// ---- chat: FAQ-style support traffic; most questions are asked again word for word ----
const FAQ_FACTS = {
  plan_price_standard: '29.90',
  plan_price_premium: '49.90',
  data_allowance_standard: '40M',
  rollover_days: '30',
  support_hotline: '10000',
  refund_window_days: '7',
  addon_price_security: '5.00',
  family_members_max: '5',
};
const FAQ_SYSTEM = [
  'You are the customer service assistant of a carrier selling AI token packages. Answer briefly and only from these facts:',
  ...Object.entries(FAQ_FACTS).map(([k, v]) => `- ${k}=${v}`),
  'If a question is not covered by the facts, say you will hand it to a human agent.',
].join('\n');
const FAQ_QUESTIONS: [string, keyof typeof FAQ_FACTS][] = [
  ['How much does the standard package cost per month?', 'plan_price_standard'],
  ['What is the price of the premium package?', 'plan_price_premium'],
  ['How many tokens does the standard package include?', 'data_allowance_standard'],
  ['How long do unused tokens roll over?', 'rollover_days'],
  ['What number do I call for support?', 'support_hotline'],
  ['How many days do I have to ask for a refund?', 'refund_window_days'],
  ['What does the security add-on cost?', 'addon_price_security'],
  ['How many family members can share a package?', 'family_members_max'],
];
const CHAT_MODELS = ['deepseek-v3.2', 'qwen3-max', 'glm-5'];
for (let i = 0; i < 80; i++) {
  const personal = r.next() < 0.3;
  let user: string;
  let expect: string;
  if (personal) {
    const order = recallId('ORD');
    user = `My order is order_id=${order} and it has not arrived. Can you confirm the order number you see? [recall order_id]`;
    expect = `order_id=${order}`;
  } else {
    // Zipf-like: the first questions are asked most.
    const q = FAQ_QUESTIONS[Math.min(FAQ_QUESTIONS.length - 1, Math.floor(FAQ_QUESTIONS.length * r.next() ** 2))]!;
    user = `${q[0]} [recall ${q[1]}]`;
    expect = `${q[1]}=${FAQ_FACTS[q[1]]}`;
  }
  sessions.push({
    type: 'session',
    id: `chat-${String(i).padStart(3, '0')}`,
    kind: 'chat',
    quick: i % 3 === 0,
    model: CHAT_MODELS[i % CHAT_MODELS.length]!,
    autoOk: true,
    temperature: 0,
    maxTokens: 128,
    messages: [
      { role: 'system', content: FAQ_SYSTEM },
      { role: 'user', content: user },
    ],
    requests: [{ upTo: 2, expect }],
  });
}

// ---- agent loops: the same system prompt and tools every turn, long and growing tool outputs, files read again ----
const AGENT_MODELS = ['deepseek-v3.2', 'glm-5', 'kimi-k2', 'qwen3-max'];
for (let s = 0; s < 8; s++) {
  const target = path().replace('.ts', '.test.ts');
  const runId = recallId('TR');
  const buildHash = `bh${r.int(100000, 999999)}`;
  const messages: Msg[] = [
    { role: 'system', content: AGENT_SYSTEM },
    { role: 'user', content: `The test ${target} fails since yesterday's merge. Find the cause and fix it.` },
  ];
  const requests: Request[] = [];
  const read = new Map<string, string>();
  const steps = r.int(10, 14);
  for (let j = 0; j < steps; j++) {
    const kind = j === 0 ? 'run_tests' : r.pick(['read_file', 'read_file', 'grep', 'run_tests', 'bash', 'edit_file']);
    let args: Record<string, string>;
    let output: string;
    if (kind === 'read_file') {
      // A quarter of the reads open a file read before: the same long block again.
      const again = read.size > 0 && r.next() < 0.35;
      const p = again ? r.pick([...read.keys()]) : path();
      args = { path: p };
      output = read.get(p) ?? codeFile(p, r.int(2500, 6000));
      read.set(p, output);
    } else if (kind === 'run_tests') {
      args = { file: target };
      // The first run prints the run id; later runs are longer (the suite grows as the agent widens it).
      output = logOutput(2500 + j * 400, j === 0 ? [`test_run_id=${runId}`] : [], target);
    } else if (kind === 'bash') {
      args = { command: 'npm run build' };
      output = logOutput(2000 + j * 300, j === 1 || j === 2 ? [`build_hash=${buildHash}`] : []);
    } else if (kind === 'grep') {
      const id = ident();
      args = { pattern: id };
      output = Array.from({ length: r.int(15, 40) }, () => `${path()}:${r.int(1, 400)}:  const ${id} = ${ident()}(${r.int(0, 9)});`).join('\n');
    } else {
      args = { path: path(), patch: `- ${ident()}\n+ ${ident()}` };
      output = `Applied 1 hunk to ${args['path']}.`;
    }
    const id = `call_${s}_${j}`;
    messages.push({ role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name: kind, arguments: JSON.stringify(args) } }] });
    messages.push({ role: 'tool', tool_call_id: id, content: output });
    requests.push({ upTo: messages.length, expect: `The tool returned: ${output.slice(0, 60)}` });
  }
  // The user checks in at the end: a fact from the first test run (stale by now) and the build hash.
  const hasHash = messages.some((m) => typeof m['content'] === 'string' && (m['content'] as string).includes(`build_hash=${buildHash}`));
  messages.push({
    role: 'user',
    content: `Before you summarise: which test run id did the very first run print? [recall test_run_id]${hasHash ? ' And the build hash? [recall build_hash]' : ''}`,
  });
  requests.push({ upTo: messages.length, expect: `test_run_id=${runId}${hasHash ? `; build_hash=${buildHash}` : ''}` });
  sessions.push({
    type: 'session',
    id: `agent-${s}`,
    kind: 'agent',
    quick: s % 3 === 0,
    model: AGENT_MODELS[s % AGENT_MODELS.length]!,
    autoOk: true,
    temperature: 0,
    maxTokens: 256,
    tools: TOOLS,
    messages,
    requests,
  });
}

// ---- coding sessions: a long shared prefix (the repository's context) and follow-ups; a file pasted twice ----
const REPOS = ['billing-service', 'edge-gateway'].map((name, k) => {
  const facts = [
    [`MAX_RETRIES=${r.int(3, 9)}`, `DEFAULT_TIMEOUT_MS=${r.int(10, 60) * 1000}`],
    [`BATCH_LIMIT=${r.int(100, 900)}`, `CACHE_TTL_S=${r.int(60, 3600)}`],
    [`SCHEMA_VERSION=${r.int(4, 12)}`],
  ];
  const files = facts.map((f, i) => ({ path: `src/${r.pick(MODULES)}/${FILES[(k * 3 + i) % FILES.length]}.ts`, facts: f }));
  const bodies = files.map((f) => codeFile(f.path, r.int(6000, 8000), f.facts));
  const context = files.map((f, i) => `=== ${f.path} ===\n${bodies[i]}`).join('\n\n');
  return { name, files, bodies, context };
});
const CODING_MODELS = ['claude-4.7', 'gpt-5.5'];
for (let s = 0; s < 6; s++) {
  const repo = REPOS[s % REPOS.length]!;
  const messages: Msg[] = [
    { role: 'system', content: `You are a senior engineer helping with the repository ${repo.name}. Its main files follow.\n\n${repo.context}` },
  ];
  const requests: Request[] = [];
  const turns = r.int(4, 6);
  const pasted = r.int(0, repo.files.length - 1);
  for (let t = 0; t < turns; t++) {
    const fi = r.int(0, repo.files.length - 1);
    const fact = r.pick(repo.files[fi]!.facts);
    const name = fact.split('=')[0]!;
    // Turns 1 and 3 paste the same file again (the developer re-sends it with the question).
    const paste = t === 1 || t === 3 ? `\n\nHere is the file again:\n${repo.bodies[pasted]}` : '';
    messages.push({ role: 'user', content: `What is ${name} set to, and where is it used? [recall ${name}]${paste}` });
    requests.push({ upTo: messages.length, expect: fact });
    messages.push({ role: 'assistant', content: `It is set in ${repo.files[fi]!.path}; ${r.pick(WORDS)} ${r.pick(WORDS)} reads it.` });
  }
  sessions.push({
    type: 'session',
    id: `coding-${s}`,
    kind: 'coding',
    quick: s % 3 === 0,
    model: CODING_MODELS[s % CODING_MODELS.length]!,
    autoOk: false,
    temperature: 0,
    maxTokens: 256,
    messages,
    requests,
  });
}

// Interleave the kinds as a gateway sees them: round robin over the three kinds' sessions.
const byKind = ['chat', 'agent', 'coding'].map((k) => sessions.filter((x) => x.kind === k));
const ordered: Session[] = [];
for (let i = 0; ordered.length < sessions.length; i++) for (const list of byKind) if (i < list.length) ordered.push(list[i]!);

const count = (k: string, quick: boolean): number => ordered.filter((x) => x.kind === k && (!quick || x.quick)).reduce((n, x) => n + x.requests.length, 0);
const meta = {
  type: 'meta',
  name: 'cost',
  version: 1,
  seed,
  generator: 'bench/workloads/generate-cost.ts',
  synthetic: true,
  requests: { chat: count('chat', false), agent: count('agent', false), coding: count('coding', false) },
  quickRequests: { chat: count('chat', true), agent: count('agent', true), coding: count('coding', true) },
};
writeFileSync(out, `${[meta, ...ordered].map((x) => JSON.stringify(x)).join('\n')}\n`);
console.log(`wrote ${out}: ${JSON.stringify(meta.requests)} (quick ${JSON.stringify(meta.quickRequests)})`);
