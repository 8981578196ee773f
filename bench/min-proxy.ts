/**
 * The speed of light for a Node gateway: node:http in front, one undici Pool to the upstream, no auth,
 * no parsing, no charging. The request body is buffered (a gateway must read it to route it) and sent
 * with its length; the response is piped back chunk by chunk (SSE chunks are written as they arrive).
 *
 *   node --import tsx bench/min-proxy.ts --upstream http://127.0.0.1:PORT [--port 0]
 * prints one JSON line {"ready":true,"url":...,"pid":...}.
 */
import { createServer, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { announce, serveControl } from './lib/child-ipc.ts';
import { arg } from './lib/args.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'host']);

function forwardable(h: IncomingHttpHeaders | Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const k in h) if (!HOP_BY_HOP.has(k)) out[k] = h[k];
  return out;
}

const upstream = arg('upstream');
// connections: null = unlimited, so 1,000 concurrent streams are 1,000 upstream requests in flight.
const pool = new Pool(upstream, { connections: null, pipelining: 1, keepAliveTimeout: 30_000 });

const server = createServer({ noDelay: true, keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    pool
      .request({ method: req.method as 'POST', path: req.url ?? '/', headers: forwardable(req.headers) as Record<string, string>, body })
      .then(async (up) => {
        // A client that goes away stops the upstream read (the for-await then throws).
        res.once('close', () => {
          if (!res.writableFinished) up.body.destroy();
        });
        res.writeHead(up.statusCode, forwardable(up.headers));
        for await (const chunk of up.body) {
          if (!res.write(chunk))
            await new Promise((r) => {
              res.once('drain', r);
              res.once('close', r);
            });
        }
        res.end();
      })
      .catch(() => {
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end('{"error":"bad gateway"}');
        } else res.destroy();
      });
  });
});

server.listen(Number(arg('port', '0')), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  announce({ url: `http://127.0.0.1:${port}` });
});

serveControl({
  async stop() {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await pool.close().catch(() => undefined);
  },
});
