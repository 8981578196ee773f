/**
 * Context compression for agent loops (issue 17 item 6), pure: decides which parts of a conversation can be
 * shortened without breaking it, over a dialect-neutral view (`Turn[]`), so the canonical request and an
 * Anthropic client's native body are compressed by the same rules (`apply.ts`).
 *
 * Rules:
 * - The stale zone: the messages before the window. The window holds at least the last `keepTurns` assistant turns
 *   (the current task's recent tool calls and outputs); its start moves in steps of `epochTurns` assistant turns
 *   (default 1: every turn). The compressed form of a stale message does not depend on later messages, so a loop's
 *   compressed prefix only changes where the boundary moved and the vendor's prompt cache keeps hitting before it;
 *   larger steps keep more of the prefix cached but leave more stale text in (on the cost benchmark's workload,
 *   steps of 1, 2, 4, 8 cut vendor cost 12 %, 7 %, 4 %, 2 %: dropped text costs less than cached text). Only the stale zone is edited,
 *   never the system prompt or the latest user instruction; messages are never removed and tool calls never
 *   changed, so every tool call keeps its result (OpenAI `tool_call_id`, Anthropic `tool_use` / `tool_result`).
 * - Repeated context: a block (a run of text between blank lines, or a whole part; >= `repeatMinChars`) whose
 *   first occurrence is in a system prompt or an earlier user text (which are never stubbed, and stay whole) is
 *   replaced in the stale zone by a reference to it: a file pasted or read again, a document already in the
 *   system prompt. The first occurrence of a block never changes as a conversation grows, so neither does the
 *   reference.
 * - Stale tool outputs: a tool output of the stale zone (>= `stubMinChars`) is cut to its head and tail with a
 *   marker saying how many characters were dropped.
 * - The guard: rare tokens of the latest turn (the last user text and the last assistant text: identifiers
 *   with `_`, digits, dots or inner capitals, paths, numbers of 4+ digits, quoted strings) are looked up in what a
 *   stub would drop; the lines holding one are kept in place between markers (`guarded`), so content the latest
 *   turn refers to still reaches the model. A latest turn with more than 64 rare tokens (a file pasted as the
 *   question) switches stubbing off for the request. A reference drops nothing (its copy reaches the model whole).
 *
 * Properties (tested in `plan.test.ts`): never grows a part, never touches the window, system messages, the
 * latest instruction or tool calls, idempotent (a compressed conversation compresses to itself), the guard keeps
 * referenced lines, and a loop's compressed prefix only changes when its boundary moves.
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
  /** Assistant turns kept whole at the end, at least (with everything after the first of them). */
  keepTurns: number;
  /** The window's start moves in steps of this many assistant turns (1: every turn). */
  epochTurns: number;
  /** A stale tool output at least this long is cut to head + marker + tail. */
  stubMinChars: number;
  headChars: number;
  tailChars: number;
  /** A block at least this long, repeated verbatim after its first occurrence, is replaced there by a reference. */
  repeatMinChars: number;
  /** Keep spans holding rare tokens of the latest turn (off only to show what the guard is for). */
  guard: boolean;
}

export const DEFAULT_COMPRESS_OPTIONS: Readonly<CompressOptions> = Object.freeze({
  keepTurns: 2,
  epochTurns: 1,
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
  /** The latest turn names too many rare tokens to tell what it needs: no stale output was cut for this request. */
  guardOff?: true;
}

const STUB_MARK = '[… tokengrid: ';
/** Above this many rare tokens in the latest turn the guard switches stubbing off for the request. */
export const GUARD_MAX_TOKENS = 64;
const REF_MARK = '[tokengrid: ';

/** The marker put between the head and the tail of a stale tool output. */
export function stubMarker(dropped: number): string {
  return `\n${STUB_MARK}${dropped} characters of this earlier tool output dropped …]\n`;
}

/** The reference that replaces a block repeated verbatim in `where` ("the system prompt", "message 3"), which reaches the model whole. */
export function referenceText(chars: number, where: string): string {
  return `${REF_MARK}same ${chars} characters as in ${where} above]`;
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

/**
 * The latest turn: the last user message with text, and the last assistant message's text. Not the assistant's
 * tool-call arguments: they name what the model is about to fetch fresh, and they change every step of a loop, so
 * guarding on them would change the compressed prefix every request and defeat the vendor's prompt cache.
 */
function latestTurnText(turns: readonly Turn[]): string {
  const pieces: string[] = [];
  const u = latestUserText(turns);
  if (u >= 0) for (const p of turns[u]!.parts) if (p.kind === 'text') pieces.push(p.text);
  for (let i = turns.length - 1; i >= 0; i--) {
    const t = turns[i]!;
    if (t.role === 'assistant') {
      for (const p of t.parts) if (p.kind === 'text') pieces.push(p.text);
      break;
    }
  }
  return pieces.join('\n');
}

/**
 * The first message of the window: the stale zone before it holds the first S assistant turns, S = the turns
 * beyond the last `keepTurns`, rounded down to a multiple of `epochTurns` (0: nothing is stale).
 */
export function windowStart(turns: readonly Turn[], keepTurns: number, epochTurns = 1): number {
  const assistants: number[] = [];
  for (let i = 0; i < turns.length; i++) if (turns[i]!.role === 'assistant') assistants.push(i);
  const epoch = Math.max(1, epochTurns);
  const stale = Math.floor(Math.max(0, assistants.length - Math.max(1, keepTurns)) / epoch) * epoch;
  return stale === 0 ? 0 : assistants[stale]!;
}

/**
 * head + (dropped runs as markers, guarded lines kept) + tail; undefined when nothing would be dropped. Lines are
 * split at '\n'; a kept line is whole (so a NAME=VALUE the latest turn asks for survives with its line). Each
 * token is searched with indexOf over the middle once (O(tokens x length), never per line).
 */
function stubWithGuard(text: string, head: number, tailFrom: number, needed: readonly string[], plan: CompressionPlan): string | undefined {
  if (tailFrom <= head) return undefined;
  const middle = text.slice(head, tailFrom);
  // Lines holding a needed token: start offset -> end offset (exclusive, after its '\n').
  const keep = new Map<number, number>();
  for (const t of needed) {
    let i = middle.indexOf(t);
    while (i >= 0) {
      const from = middle.lastIndexOf('\n', i - 1) + 1;
      const nl = middle.indexOf('\n', i + t.length);
      const to = nl < 0 ? middle.length : nl + 1;
      if (!keep.has(from)) {
        keep.set(from, to);
        if (plan.guardHits.length < 5 && !plan.guardHits.includes(t)) plan.guardHits.push(t);
      }
      i = to >= middle.length ? -1 : middle.indexOf(t, to);
    }
  }
  if (keep.size === 0) return text.slice(0, head) + stubMarker(middle.length) + text.slice(tailFrom);
  plan.guarded++;
  const out: string[] = [text.slice(0, head)];
  const marker = (n: number): string => (out[out.length - 1]!.endsWith('\n') ? stubMarker(n).slice(1) : stubMarker(n));
  let pos = 0;
  for (const from of [...keep.keys()].sort((x, y) => x - y)) {
    if (from < pos) continue; // a token spanning lines made a range that overlaps the previous one
    if (from > pos) out.push(marker(from - pos));
    const to = keep.get(from)!;
    out.push(middle.slice(from, to));
    pos = to;
  }
  if (pos < middle.length) out.push(marker(middle.length - pos));
  out.push(text.slice(tailFrom));
  return out.join('');
}

/** Decides the edits for one conversation (does not change it). */
export function planCompression(turns: readonly Turn[], opts: Readonly<CompressOptions> = DEFAULT_COMPRESS_OPTIONS): CompressionPlan {
  const plan: CompressionPlan = { edits: [], removedChars: 0, guarded: 0, guardHits: [] };
  const start = windowStart(turns, opts.keepTurns, opts.epochTurns);
  if (start === 0) return plan;
  const minLen = Math.min(opts.stubMinChars, opts.repeatMinChars);
  const instruction = latestUserText(turns);

  // The first occurrence of each long block in a system prompt or a user text (never stubbed: it stays whole).
  const first = new Map<string, number>();
  let systemTurns = 0;
  for (let m = 0; m < turns.length; m++) {
    const t = turns[m]!;
    if (t.role === 'system') systemTurns++;
    if (t.role !== 'system' && t.role !== 'user') continue;
    for (const p of t.parts) {
      if (p.kind !== 'text' || p.text.length < opts.repeatMinChars) continue;
      for (const block of p.text.split(/\n{2,}/)) if (block.length >= opts.repeatMinChars && !first.has(block)) first.set(block, m);
    }
  }
  const where = (m: number): string =>
    turns[m]!.role === 'system' ? (systemTurns === 1 ? 'the system prompt' : `system message ${m + 1}`) : `message ${m + 1}`;
  // The guard's tokens; a latest turn naming more than GUARD_MAX_TOKENS rare tokens (a whole file pasted as the
  // question) could need anything: stale outputs are then left whole for this request (references still apply).
  const needed = opts.guard ? rareTokens(latestTurnText(turns)) : [];
  const stubsOff = needed.length > GUARD_MAX_TOKENS;
  if (stubsOff) plan.guardOff = true;

  for (let m = 0; m < start; m++) {
    const turn = turns[m]!;
    if (turn.role === 'system' || turn.role === 'assistant' || m === instruction) continue;
    for (let i = 0; i < turn.parts.length; i++) {
      const p = turn.parts[i]!;
      // A part that already holds a stub is left as it is (compressing twice changes nothing).
      if (p.kind === 'other' || p.text.length < minLen || p.text.includes(STUB_MARK)) continue;
      // Repeated context: a block whose first occurrence is earlier becomes a reference to it.
      let text = p.text;
      let referenced = false;
      if (first.size > 0) {
        const pieces = text.split(/(\n{2,})/);
        for (let j = 0; j < pieces.length; j += 2) {
          const at = pieces[j]!.length >= opts.repeatMinChars ? first.get(pieces[j]!) : undefined;
          if (at === undefined || at >= m) continue;
          const ref = referenceText(pieces[j]!.length, where(at));
          if (ref.length >= pieces[j]!.length) continue;
          pieces[j] = ref;
          referenced = true;
        }
        if (referenced) text = pieces.join('');
      }
      // Stale tool outputs: head + marker + tail, the guard keeping the lines the latest turn refers to.
      let stubbed = false;
      if (p.kind === 'tool_result' && text.length >= opts.stubMinChars && !stubsOff) {
        const head = safeCut(text, opts.headChars);
        const tailFrom = safeCut(text, text.length - opts.tailChars);
        const stub = stubsOff ? undefined : stubWithGuard(text, head, tailFrom, needed, plan);
        if (stub !== undefined && stub.length < text.length) {
          text = stub;
          stubbed = true;
        }
      }
      if (!referenced && !stubbed) continue;
      plan.edits.push({ message: m, part: i, text, kind: stubbed ? 'stub' : 'reference' });
      plan.removedChars += p.text.length - text.length;
    }
  }
  return plan;
}
