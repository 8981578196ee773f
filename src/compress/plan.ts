/**
 * Context compression for agent loops (issue 17 item 6), pure: decides which parts of a conversation can be
 * shortened without breaking it, over a dialect-neutral view (`Turn[]`), so the canonical request and an
 * Anthropic client's native body are compressed by the same rules (`canonical.ts`, `anthropic.ts`).
 *
 * Rules:
 * - Nothing in the window is touched: the system prompt, the latest user instruction, and every message from
 *   the `keepTurns`-th last assistant turn on (the current task's recent tool calls and their outputs). Messages are never removed, and
 *   tool calls are never changed, so every tool call keeps its result (OpenAI `tool_call_id`, Anthropic
 *   `tool_use` / `tool_result`).
 * - Repeated context: a long text or tool output (>= `repeatMinChars`) sent again verbatim later in the
 *   conversation is replaced, in its earlier places, by a reference to the later copy, which stays whole.
 * - Stale tool outputs: a long tool output (>= `stubMinChars`) before the window is cut to its head and tail
 *   with a marker saying how many characters were dropped.
 * - The guard: rare tokens of the latest turn (the last user text and the last assistant message: identifiers
 *   with `_`, digits, dots or inner capitals, paths, numbers of 4+ digits, quoted strings) are looked up in each
 *   span that would be dropped; a span holding one is kept whole (`guarded`), so content the latest turn refers
 *   to still reaches the model. A repeated block is never lost (its later copy stays), so it needs no guard.
 *
 * Properties (tested in `plan.test.ts`): never grows a part, never touches the window, system messages or
 * tool calls, idempotent (a compressed conversation compresses to itself), and the guard keeps referenced spans.
 */

export type TurnRole = 'system' | 'user' | 'assistant' | 'tool';

/** One part of a message: `other` parts (tool calls, images) are read by the guard but never replaced. */
export interface TurnPart {
  kind: 'text' | 'tool_result' | 'other';
  text: string;
}

export interface Turn {
  role: TurnRole;
  parts: TurnPart[];
}

export interface CompressOptions {
  /** Assistant turns kept whole at the end (with everything after the first of them). */
  keepTurns: number;
  /** A stale tool output at least this long is cut to head + marker + tail. */
  stubMinChars: number;
  headChars: number;
  tailChars: number;
  /** A text or tool output at least this long, repeated later verbatim, is replaced by a reference. */
  repeatMinChars: number;
  /** Keep spans holding rare tokens of the latest turn (off only to show what the guard is for). */
  guard: boolean;
}

export const DEFAULT_COMPRESS_OPTIONS: Readonly<CompressOptions> = Object.freeze({
  keepTurns: 2,
  stubMinChars: 1024,
  headChars: 200,
  tailChars: 100,
  repeatMinChars: 512,
  guard: true,
});

export interface PartEdit {
  message: number;
  part: number;
  /** The replacement text (always shorter than the original). */
  text: string;
  kind: 'stub' | 'reference';
}

export interface CompressionPlan {
  edits: PartEdit[];
  /** Characters removed (original length - replacement length, summed). */
  removedChars: number;
  /** Spans the guard kept whole because they hold a rare token of the latest turn. */
  guarded: number;
  /** The latest turn's rare tokens that the guard found in a span (at most a few, for the log). */
  guardHits: string[];
}

const STUB_MARK = '[… tokengrid: ';
const REF_MARK = '[tokengrid: ';

/** The marker put between the head and the tail of a stale tool output. */
export function stubMarker(dropped: number): string {
  return `\n${STUB_MARK}${dropped} characters of this earlier tool output dropped …]\n`;
}

export function referenceText(chars: number, laterMessage: number): string {
  return `${REF_MARK}${chars} characters repeated verbatim in message ${laterMessage + 1} below]`;
}

/** A cut index that does not split a UTF-16 surrogate pair. */
function safeCut(s: string, i: number): number {
  if (i <= 0 || i >= s.length) return Math.max(0, Math.min(i, s.length));
  const c = s.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff ? i - 1 : i;
}

const QUOTED = /"([^"\n]{3,120})"|`([^`\n]{3,120})`|(?:^|[\s(=:])'([^'\n]{3,120})'/g;
const PATH = /(?:[\w.-]+)?(?:\/[\w.-]+)+/g;
const WORD = /[A-Za-z_$][\w$]*(?:[.-][\w$]+)*/g;
const NUMBER = /\d{4,}/g;

/** Rare tokens of a text: identifiers, paths, numbers of 4+ digits and quoted strings (see the header). */
export function rareTokens(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(QUOTED)) {
    const q = (m[1] ?? m[2] ?? m[3] ?? '').trim();
    if (q.length >= 3) out.add(q);
  }
  for (const m of text.matchAll(PATH)) if (m[0].length >= 4 && /[A-Za-z0-9]/.test(m[0])) out.add(m[0]);
  for (const m of text.matchAll(WORD)) {
    const w = m[0];
    if (w.length >= 4 && (/[_\d$.]/.test(w) || /[a-z][A-Z]/.test(w))) out.add(w);
  }
  for (const m of text.matchAll(NUMBER)) out.add(m[0]);
  return [...out];
}

/** The last user message with text: the instruction the current turn works on (never compressed). */
function latestUserText(turns: readonly Turn[]): number {
  for (let i = turns.length - 1; i >= 0; i--) {
    const t = turns[i]!;
    if (t.role === 'user' && t.parts.some((p) => p.kind === 'text')) return i;
  }
  return -1;
}

/** The latest turn: the last user message with text, and the last assistant message (its text and tool calls). */
function latestTurnText(turns: readonly Turn[]): string {
  const pieces: string[] = [];
  const u = latestUserText(turns);
  if (u >= 0) for (const p of turns[u]!.parts) if (p.kind === 'text') pieces.push(p.text);
  for (let i = turns.length - 1; i >= 0; i--) {
    const t = turns[i]!;
    if (t.role === 'assistant') {
      for (const p of t.parts) if (p.kind !== 'tool_result') pieces.push(p.text);
      break;
    }
  }
  return pieces.join('\n');
}

/** The first message of the window: the `keepTurns`-th last assistant message (the whole conversation when there are fewer). */
export function windowStart(turns: readonly Turn[], keepTurns: number): number {
  let seen = 0;
  for (let i = turns.length - 1; i >= 0; i--) {
    if (turns[i]!.role !== 'assistant') continue;
    seen++;
    if (seen >= Math.max(1, keepTurns)) return i;
  }
  return 0;
}

/** Decides the edits for one conversation (does not change it). */
export function planCompression(turns: readonly Turn[], opts: Readonly<CompressOptions> = DEFAULT_COMPRESS_OPTIONS): CompressionPlan {
  const plan: CompressionPlan = { edits: [], removedChars: 0, guarded: 0, guardHits: [] };
  const start = windowStart(turns, opts.keepTurns);
  if (start === 0) return plan;
  const minLen = Math.min(opts.stubMinChars, opts.repeatMinChars);

  // The last place each long text occurs (whole part, any message): the copy a reference points to.
  const lastAt = new Map<string, number>();
  for (let m = 0; m < turns.length; m++) {
    for (const p of turns[m]!.parts) if (p.kind !== 'other' && p.text.length >= opts.repeatMinChars) lastAt.set(p.text, m);
  }
  const needed = opts.guard ? rareTokens(latestTurnText(turns)) : [];
  const guardHit = (span: string): string | undefined => {
    for (const t of needed) if (span.includes(t)) return t;
    return undefined;
  };

  /** Would the later copy of `text` (at message `m`) be stubbed? Then a reference would point to a stub. */
  const stubbed = new Map<string, boolean>();
  const stubFor = (text: string): string | undefined => {
    const head = safeCut(text, opts.headChars);
    const tailFrom = safeCut(text, text.length - opts.tailChars);
    if (tailFrom <= head) return undefined;
    const dropped = text.slice(head, tailFrom);
    if (guardHit(dropped) !== undefined) return undefined;
    const out = text.slice(0, head) + stubMarker(dropped.length) + text.slice(tailFrom);
    return out.length < text.length ? out : undefined;
  };
  const instruction = latestUserText(turns);
  const isStubbable = (m: number, kind: TurnPart['kind'], text: string): boolean =>
    m < start &&
    m !== instruction &&
    kind === 'tool_result' &&
    turns[m]!.role !== 'system' &&
    turns[m]!.role !== 'assistant' &&
    text.length >= opts.stubMinChars;

  for (let m = 0; m < start; m++) {
    const turn = turns[m]!;
    if (turn.role === 'system' || turn.role === 'assistant' || m === instruction) continue;
    for (let i = 0; i < turn.parts.length; i++) {
      const p = turn.parts[i]!;
      if (p.kind === 'other' || p.text.length < minLen) continue;
      // Repeated context: refer to the later copy when that copy stays whole.
      const later = p.text.length >= opts.repeatMinChars ? lastAt.get(p.text) : undefined;
      if (later !== undefined && later > m) {
        const laterPart = turns[later]!.parts.find((q) => q.text === p.text)!;
        let laterStubbed = stubbed.get(p.text);
        if (laterStubbed === undefined) {
          laterStubbed = isStubbable(later, laterPart.kind, p.text) && stubFor(p.text) !== undefined;
          stubbed.set(p.text, laterStubbed);
        }
        if (!laterStubbed) {
          const ref = referenceText(p.text.length, later);
          if (ref.length < p.text.length) {
            plan.edits.push({ message: m, part: i, text: ref, kind: 'reference' });
            plan.removedChars += p.text.length - ref.length;
            continue;
          }
        }
      }
      if (!isStubbable(m, p.kind, p.text)) continue;
      const stub = stubFor(p.text);
      if (stub === undefined) {
        const hit = guardHit(p.text.slice(safeCut(p.text, opts.headChars), safeCut(p.text, p.text.length - opts.tailChars)));
        if (hit !== undefined) {
          plan.guarded++;
          if (plan.guardHits.length < 5 && !plan.guardHits.includes(hit)) plan.guardHits.push(hit);
        }
        continue;
      }
      plan.edits.push({ message: m, part: i, text: stub, kind: 'stub' });
      plan.removedChars += p.text.length - stub.length;
    }
  }
  return plan;
}
