/**
 * For adapter tests: a local HTTP upstream whose first path segment names the scenario that answers, and an
 * undici Agent to reach it. `onRequest` sees each request (its body read) before the scenario's handler.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import { Agent } from 'undici';
import type { ChatRequest } from '../../wire/index.ts';
import { UpstreamError, type UpstreamCall, type UpstreamErrorKind } from '../types.ts';

export type ScenarioHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface ScenarioUpstream {
  server: Server;
  port: number;
  agent: Agent;
  close(): Promise<void>;
}

export async function startScenarioUpstream(
  scenarios: Record<string, ScenarioHandler>,
  onRequest: (name: string, req: IncomingMessage, res: ServerResponse, body: string) => void = () => undefined,
): Promise<ScenarioUpstream> {
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => {
      raw += d.toString();
    });
    req.on('end', () => {
      const name = (req.url ?? '').split('/')[1] ?? '';
      onRequest(name, req, res, raw);
      const handler = scenarios[name];
      if (handler === undefined) {
        res.writeHead(404);
        res.end();
        return;
      }
      void handler(req, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const agent = new Agent();
  return {
    server,
    port: (server.address() as AddressInfo).port,
    agent,
    async close() {
      server.closeAllConnections();
      await agent.close();
      server.close();
    },
  };
}

/** A call to `scenario` on the upstream (provider fields and call fields overridable). */
export function scenarioCall(
  up: ScenarioUpstream,
  scenario: string,
  provider: Partial<UpstreamCall['provider']> = {},
  over: Partial<UpstreamCall> = {},
): UpstreamCall {
  return {
    provider: { name: 'fake', adapter: 'openai-compatible', baseUrl: `http://127.0.0.1:${up.port}/${scenario}/v1`, ...provider },
    upstreamModel: 'up',
    dispatcher: up.agent,
    signal: new AbortController().signal,
    requestId: 'req_test',
    timeoutMsHeaders: 5000,
    timeoutMsBody: 5000,
    ...over,
  };
}

export const chatRequest = (over: Partial<ChatRequest> = {}): ChatRequest => ({
  model: 'client-model',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
  stream: false,
  includeUsage: false,
  maxTokensOutput: 64,
  extra: {},
  ...over,
});

/** Awaits `p` and checks it failed with UpstreamError(kind[, status]); returns the error. */
export async function rejectsWith(p: Promise<unknown>, kind: UpstreamErrorKind, status?: number): Promise<UpstreamError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof UpstreamError, `expected UpstreamError(${kind}), got ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  if (status !== undefined) assert.equal(caught.status, status);
  return caught;
}

/**
 * Whether the adapter tests run on the fast paths (the default) or on their general twins: general-path.test.ts
 * sets this flag and imports adapter.test.ts and dispatch.test.ts again, so every behaviour is checked both ways.
 */
export function testFastPaths(): boolean {
  return (globalThis as { TOKENGRID_TEST_FAST_PATHS?: boolean }).TOKENGRID_TEST_FAST_PATHS !== false;
}
