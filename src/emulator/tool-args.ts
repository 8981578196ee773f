/**
 * Deterministic tool-call arguments from a JSON schema (OpenAI `parameters`, Anthropic
 * `input_schema`, Gemini `parameters` with upper-case OpenAPI type names): every property gets
 * string -> "demo", number/integer -> 42, boolean -> true, enum -> its first value.
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
  return 'string';
}

const DEPTH_MAX = 6;

export function valueFromSchema(schema: unknown, depth = 0): unknown {
  if (!isRecord(schema) || depth > DEPTH_MAX) return 'demo';
  const en = schema['enum'];
  if (Array.isArray(en) && en.length > 0) return en[0];
  if ('const' in schema) return schema['const'];
  for (const key of ['anyOf', 'oneOf'] as const) {
    const alts = schema[key];
    if (Array.isArray(alts) && alts.length > 0) return valueFromSchema(alts[0], depth + 1);
  }
  switch (typeOf(schema)) {
    case 'number':
    case 'integer':
      return 42;
    case 'boolean':
      return true;
    case 'array':
      return [valueFromSchema(schema['items'], depth + 1)];
    case 'object':
      return objectFromSchema(schema, depth + 1);
    case 'null':
      return null;
    default:
      return 'demo';
  }
}

export function objectFromSchema(schema: unknown, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!isRecord(schema)) return out;
  const props = schema['properties'];
  if (!isRecord(props)) return out;
  for (const [name, sub] of Object.entries(props)) out[name] = valueFromSchema(sub, depth);
  return out;
}

export function argsJsonFromSchema(schema: unknown): string {
  return JSON.stringify(objectFromSchema(schema));
}
