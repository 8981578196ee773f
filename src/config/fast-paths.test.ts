import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfigFile, resolveConfig } from './load.ts';

test('fast paths are on by default and TOKENGRID_FAST_PATHS=off switches every one to its general twin', () => {
  const file = loadConfigFile(DEFAULT_CONFIG_PATH);
  assert.equal(resolveConfig(file, {}).server.fastPaths, true);
  assert.equal(resolveConfig(file, { TOKENGRID_FAST_PATHS: 'off' }).server.fastPaths, false);
  assert.equal(resolveConfig({ ...file, server: { ...file.server, fastPaths: false } }, { TOKENGRID_FAST_PATHS: 'on' }).server.fastPaths, true);
  assert.throws(
    () => resolveConfig(file, { TOKENGRID_FAST_PATHS: 'maybe' }),
    (e: unknown) => e instanceof ConfigError && /on or off/.test(e.message),
  );
});
