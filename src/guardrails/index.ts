/**
 * Guardrails (issue 17 item 7, the security protection pack): pure detection and redaction of personal data
 * (Chinese mobile numbers, resident ID numbers with a valid ISO 7064 MOD 11-2 check digit, bank card numbers
 * passing the Luhn check, e-mail addresses), operator keyword / pattern lists, and a streaming redactor that
 * gives exactly the whole-text result for the built-in kinds whatever the chunking. No I/O, no clock.
 */

export type HitKind = 'phone' | 'id' | 'card' | 'email' | 'pattern' | 'keyword' | 'block_pattern' | 'moderation' | 'moderation_error';

/** Hits per kind found by one call (only kinds with hits are present). */
export type Hits = Partial<Record<HitKind, number>>;

export interface GuardrailRules {
  /** Case-insensitive substrings that refuse an input. */
  readonly blockKeywords: readonly string[];
  /** Regexes (compiled) that refuse an input. */
  readonly blockPatterns: readonly RegExp[];
  /** Extra regexes whose matches are replaced with `[REDACTED]`. */
  readonly redactPatterns: readonly RegExp[];
}

export const NO_RULES: GuardrailRules = Object.freeze({ blockKeywords: [], blockPatterns: [], redactPatterns: [] });

/** Compile operator rules; throws an Error naming the bad pattern (for config validation). */
export function compileRules(raw: {
  blockKeywords?: readonly string[];
  blockPatterns?: readonly string[];
  redactPatterns?: readonly string[];
}): GuardrailRules {
  const compile = (p: string, flags: string): RegExp => {
    try {
      return new RegExp(p, flags);
    } catch (e) {
      throw new Error(`invalid regex ${JSON.stringify(p)}: ${(e as Error).message}`);
    }
  };
  return {
    blockKeywords: (raw.blockKeywords ?? []).filter((k) => k.length > 0).map((k) => k.toLowerCase()),
    blockPatterns: (raw.blockPatterns ?? []).map((p) => compile(p, 'iu')),
    redactPatterns: (raw.redactPatterns ?? []).map((p) => compile(p, 'gu')),
  };
}

const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK = '10X98765432';

/** An 18-character resident ID number whose last character is its ISO 7064 MOD 11-2 check digit. */
export function validResidentId(s: string): boolean {
  if (!/^\d{17}[\dXx]$/.test(s)) return false;
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (s.charCodeAt(i) - 48) * ID_WEIGHTS[i]!;
  return ID_CHECK[sum % 11] === s[17]!.toUpperCase();
}

/** The check character of the first 17 digits of a resident ID number. */
export function residentIdCheck(first17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (first17.charCodeAt(i) - 48) * ID_WEIGHTS[i]!;
  return ID_CHECK[sum % 11]!;
}

/** A digit string passing the Luhn check. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

const ID_RE = /(?<![\dXx])\d{17}[\dXx](?![\dXx])/g;
const CARD_RE = /(?<!\d)\d{13,19}(?!\d)/g;
const PHONE_RE = /(?<![\d+])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)/g;
const EMAIL_RE = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;

function bump(hits: Hits, kind: HitKind, n = 1): void {
  hits[kind] = (hits[kind] ?? 0) + n;
}

/** Redact personal data (and the operator's redact patterns) in `text`; hits are added to `hits`. */
export function redact(text: string, rules: GuardrailRules = NO_RULES, hits: Hits = {}): string {
  let out = text;
  // Cheap pre-check: every built-in kind needs a digit or an '@'.
  if (/[\d@]/.test(out)) {
    out = out.replace(ID_RE, (m) => (validResidentId(m) ? (bump(hits, 'id'), '[ID]') : m));
    out = out.replace(CARD_RE, (m) => (luhnValid(m) ? (bump(hits, 'card'), '[CARD]') : m));
    out = out.replace(PHONE_RE, () => (bump(hits, 'phone'), '[PHONE]'));
    if (out.includes('@')) out = out.replace(EMAIL_RE, () => (bump(hits, 'email'), '[EMAIL]'));
  }
  for (const re of rules.redactPatterns) {
    re.lastIndex = 0;
    out = out.replace(re, (m) => (m.length === 0 ? m : (bump(hits, 'pattern'), '[REDACTED]')));
  }
  return out;
}

/** Why an input is refused, or undefined: the first keyword or block pattern found. */
export function blockReason(text: string, rules: GuardrailRules): { kind: 'keyword' | 'block_pattern'; what: string } | undefined {
  if (rules.blockKeywords.length !== 0) {
    const lower = text.toLowerCase();
    for (const k of rules.blockKeywords) if (lower.includes(k)) return { kind: 'keyword', what: k };
  }
  for (const re of rules.blockPatterns) {
    re.lastIndex = 0;
    if (re.test(text)) return { kind: 'block_pattern', what: re.source };
  }
  return undefined;
}

// ---- streaming ----

/** Characters a built-in match can consist of (a space only between digits: phone separators). */
function runChar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) ||
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    c === 46 /* . */ ||
    c === 95 /* _ */ ||
    c === 37 /* % */ ||
    c === 43 /* + */ ||
    c === 45 /* - */ ||
    c === 64 /* @ */
  );
}
const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/** Longest held run before the redactor gives up exactness and emits anyway (a very long token run). */
export const MAX_HOLD = 512;
/** What is kept when MAX_HOLD forces a cut: longer than any built-in match but an e-mail. */
const FORCED_TAIL = 64;

/**
 * Streaming redaction: push text chunks, get the redacted text that is safe to emit now; flush() at the end.
 * Text is cut only where no built-in match can span the cut (between two characters not both part of one
 * run of match characters), so the concatenated output equals `redact(whole)` for the built-in kinds; the
 * held tail is the last run (bounded by MAX_HOLD).
 */
export class StreamRedactor {
  #held = '';
  readonly hits: Hits = {};
  constructor(readonly rules: GuardrailRules = NO_RULES) {}

  get holding(): number {
    return this.#held.length;
  }

  push(chunk: string): string {
    const buf = this.#held + chunk;
    const n = buf.length;
    const inRun = (i: number): boolean => {
      if (i >= n) return true; // unknown yet
      const c = buf.charCodeAt(i);
      if (runChar(c)) return true;
      return c === 32 && i > 0 && isDigit(buf.charCodeAt(i - 1)) && (i + 1 >= n || isDigit(buf.charCodeAt(i + 1)));
    };
    let cut = n;
    while (cut > 0 && inRun(cut - 1) && inRun(cut)) cut--;
    if (cut === 0 && n > MAX_HOLD) cut = n - FORCED_TAIL;
    if (cut === 0) {
      this.#held = buf;
      return '';
    }
    this.#held = buf.slice(cut);
    return redact(buf.slice(0, cut), this.rules, this.hits);
  }

  flush(): string {
    const rest = this.#held;
    this.#held = '';
    return rest.length === 0 ? '' : redact(rest, this.rules, this.hits);
  }
}

/** The external moderation port (default none): a flagged input is refused with content_blocked. */
export interface ModerationPort {
  moderate(text: string): Promise<{ flagged: boolean; categories?: string[] }>;
}
