/**
 * The OpenAPI document cannot drift from the routes: each request body in it is generated from the zod schema
 * the route parses with, and a route cannot parse a schema the document does not see.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { z } from 'zod';
import { accountBodies } from '../src/api/admin/accounts.ts';
import { openApiDocument } from '../src/api/admin/billing-openapi.ts';
import { chargingBodies } from '../src/api/admin/charging.ts';

const API = new URL('../src/api/', import.meta.url).pathname;

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

type Doc = { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }>> };
const doc = openApiDocument() as unknown as Doc;
const opOf = (key: string) => {
  const [method, path] = key.split(' ') as [string, string];
  return doc.paths[path.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()];
};

test('no route parses its body with an inline schema the OpenAPI document cannot see', () => {
  const inline: string[] = [];
  for (const f of files(API)) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/parseBody\(\s*rc,\s*z\./g)) inline.push(`${relative(API, f)} @${m.index}`);
  }
  assert.deepEqual(inline, [], 'name the schema in the file’s body table (e.g. accountBodies) so billing-openapi.ts documents it');
});

test('each account and charging route documents exactly the schema it parses with', () => {
  for (const [key, schema] of Object.entries({ ...accountBodies, ...chargingBodies })) {
    const op = opOf(key);
    assert.ok(op, `${key} is not in the OpenAPI document`);
    assert.deepEqual(op.requestBody?.content['application/json']?.schema, z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }), key);
  }
});

test('no write operation documents an empty request body', () => {
  const empty: string[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const schema = op.requestBody?.content['application/json']?.schema;
      if (schema === undefined) continue;
      const props = schema['properties'] as Record<string, unknown> | undefined;
      if (props === undefined || Object.keys(props).length === 0) empty.push(`${method} ${path}`);
    }
  }
  assert.deepEqual(empty, []);
});
