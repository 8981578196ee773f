import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { mock, test } from 'node:test';
import { DRAIN_TIMEOUT_MS, sseSink } from './sink.ts';

/** A response whose client stopped reading: its buffer stays full until it is destroyed. */
class StalledResponse extends EventEmitter {
  writableNeedDrain = true;
  writableEnded = false;
  destroyed = false;
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

test('a client that keeps its connection open and reads nothing is dropped after the drain timeout (attack: slow readers holding streams, holds and QoS slots for ever)', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const res = new StalledResponse();
    const sink = sseSink(res as unknown as ServerResponse, { encode: () => 'x', finish: () => '' }, () => '');
    let drained = false;
    const waiting = sink.drain().then(() => {
      drained = true;
    });
    mock.timers.tick(DRAIN_TIMEOUT_MS - 1);
    await Promise.resolve();
    assert.equal(drained, false, 'a slow reader is given the whole timeout');
    assert.equal(res.destroyed, false);
    mock.timers.tick(1);
    await waiting;
    assert.equal(res.destroyed, true, 'the connection is dropped: the request aborts and frees what it holds');
  } finally {
    mock.timers.reset();
  }
});

test('a client that reads in time keeps its stream; no timer is left behind', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const res = new StalledResponse();
    const sink = sseSink(res as unknown as ServerResponse, { encode: () => 'x', finish: () => '' }, () => '');
    const waiting = sink.drain();
    res.emit('drain');
    await waiting;
    mock.timers.tick(DRAIN_TIMEOUT_MS * 2);
    assert.equal(res.destroyed, false);
  } finally {
    mock.timers.reset();
  }
});
