/**
 * Deterministic values from a JSON schema (OpenAI `parameters`, Anthropic `input_schema`, Gemini
 * `parameters` with upper-case OpenAPI type names, response_format / output_config json_schema): string ->
 * "demo" (or a value fitting its `format`/`minLength`), number/integer -> 42 (within minimum/maximum),
 * boolean -> true, enum -> its first value, arrays -> `minItems` items (at least 1), objects -> every property
 * (so every `required` one), `$ref` to `#/$defs/...` or `#/definitions/...` followed, `allOf` merged.
 * The result validates against the schema for the keywords above.
 *
 * Tool arguments (`argsJsonFromSchema`) fill only the `required` properties unless asked for all: an agent's
 * optional parameters change what the tool does (Claude Code's Bash `run_in_background: true` turned every
 * command into a background task; Codex's `exec_command` got `workdir: "demo"`), and a model leaves them out
 * unless it means them. JSON answers (`valueFromSchema`) fill every property.
 */

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeOf(schema: Record<string, unknown>): string {
  const t = schema['type'];
  if (typeof t === 'string') return t.toLowerCase();
  if (Array.isArray(t)) {
    const first = t.find((x) => typeof x === 'string' && x.toLowerCase() !== 'null');
    if (typeof first === 'string') return first.toLowerCase();
  }
  if (isRecord(schema['properties'])) return 'object';
  if (schema['items'] !== undefined) return 'array';
  return 'string';
}

const DEPTH_MAX = 6;

/** Hints for string values, by property name (an agent's Bash tool gets a command that runs). */
export interface ValueHints {
  /** Property name (lower case) -> string value. */
  strings?: Record<string, string>;
  /** Objects get only their `required` properties (tool arguments); otherwise every property. */
  requiredOnly?: boolean;
}

interface Walk {
  root: unknown;
  hints: ValueHints | undefined;
}

function deref(schema: Record<string, unknown>, w: Walk): Record<string, unknown> {
  const ref = schema['$ref'];
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return schema;
  let node: unknown = w.root;
  for (const part of ref.slice(2).split('/')) node = isRecord(node) ? node[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  return isRecord(node) ? node : {};
}

function stringFor(schema: Record<string, unknown>, name: string | undefined, w: Walk): string {
  const hinted = name === undefined ? undefined : w.hints?.strings?.[name.toLowerCase()];
  let s = hinted ?? 'demo';
  switch (schema['format']) {
    case 'date-time':
      s = '2026-01-01T00:00:00Z';
      break;
    case 'date':
      s = '2026-01-01';
      break;
    case 'time':
      s = '00:00:00';
      break;
    case 'email':
      s = 'demo@example.com';
      break;
    case 'uri':
    case 'url':
      s = 'https://example.com/demo';
      break;
    case 'uuid':
      s = '00000000-0000-4000-8000-000000000000';
      break;
    default:
      break;
  }
  const min = typeof schema['minLength'] === 'number' ? schema['minLength'] : 0;
  const max = typeof schema['maxLength'] === 'number' ? schema['maxLength'] : Infinity;
  while (s.length < min) s += 'o';
  return s.length > max ? s.slice(0, Math.max(min, max)) : s;
}

function numberFor(schema: Record<string, unknown>, integer: boolean): number {
  const min =
    typeof schema['minimum'] === 'number' ? schema['minimum'] : typeof schema['exclusiveMinimum'] === 'number' ? schema['exclusiveMinimum'] + 1 : undefined;
  const max =
    typeof schema['maximum'] === 'number' ? schema['maximum'] : typeof schema['exclusiveMaximum'] === 'number' ? schema['exclusiveMaximum'] - 1 : undefined;
  let n = 42;
  if (max !== undefined && n > max) n = max;
  if (min !== undefined && n < min) n = min;
  return integer ? Math.ceil(n) : n;
}

function sampleValue(raw: unknown, depth: number, w: Walk, name?: string): unknown {
  if (!isRecord(raw) || depth > DEPTH_MAX) return 'demo';
  let schema = deref(raw, w);
  const all = schema['allOf'];
  if (Array.isArray(all) && all.length > 0) {
    const merged: Record<string, unknown> = { ...schema };
    const props: Record<string, unknown> = {};
    const required: unknown[] = Array.isArray(schema['required']) ? [...schema['required']] : [];
    for (const part of all) {
      const p = isRecord(part) ? deref(part, w) : {};
      Object.assign(merged, p);
      if (isRecord(p['properties'])) Object.assign(props, p['properties']);
      if (Array.isArray(p['required'])) required.push(...p['required']);
    }
    if (isRecord(schema['properties'])) Object.assign(props, schema['properties']);
    delete merged['allOf'];
    if (Object.keys(props).length > 0) merged['properties'] = props;
    if (required.length > 0) merged['required'] = required;
    schema = merged;
  }
  const en = schema['enum'];
  if (Array.isArray(en) && en.length > 0) return en[0];
  if ('const' in schema) return schema['const'];
  for (const key of ['anyOf', 'oneOf'] as const) {
    const alts = schema[key];
    if (Array.isArray(alts) && alts.length > 0) {
      const nonNull = alts.find((a) => !(isRecord(a) && a['type'] === 'null'));
      return sampleValue(nonNull ?? alts[0], depth + 1, w, name);
    }
  }
  switch (typeOf(schema)) {
    case 'number':
      return numberFor(schema, false);
    case 'integer':
      return numberFor(schema, true);
    case 'boolean':
      return true;
    case 'array': {
      const n = Math.max(1, typeof schema['minItems'] === 'number' ? schema['minItems'] : 1);
      const items = Array.isArray(schema['prefixItems']) ? schema['prefixItems'] : undefined;
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) out.push(sampleValue(items?.[i] ?? schema['items'], depth + 1, w));
      return out;
    }
    case 'object':
      return objectOf(schema, depth + 1, w);
    case 'null':
      return null;
    default:
      return stringFor(schema, name, w);
  }
}

function objectOf(schema: Record<string, unknown>, depth: number, w: Walk): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const props = schema['properties'];
  if (!isRecord(props)) return out;
  const required = Array.isArray(schema['required']) ? new Set(schema['required'].filter((r) => typeof r === 'string')) : new Set<unknown>();
  for (const [name, sub] of Object.entries(props)) {
    if (w.hints?.requiredOnly === true && !required.has(name)) continue;
    out[name] = sampleValue(sub, depth, w, name);
  }
  return out;
}

export function valueFromSchema(schema: unknown, depth = 0, hints?: ValueHints): unknown {
  return sampleValue(schema, depth, { root: schema, hints });
}

export function objectFromSchema(schema: unknown, depth = 0, hints?: ValueHints): Record<string, unknown> {
  if (!isRecord(schema)) return {};
  const v = sampleValue(schema, depth, { root: schema, hints });
  return isRecord(v) ? v : {};
}

/** Tool arguments: the `required` properties only, unless `hints.requiredOnly` is false. */
export function argsJsonFromSchema(schema: unknown, hints?: ValueHints): string {
  return JSON.stringify(objectFromSchema(schema, 0, { requiredOnly: true, ...hints }));
}
