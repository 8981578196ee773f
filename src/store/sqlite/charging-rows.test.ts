import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UsageRecord } from '../../charging/index.ts';
import { USAGE_COLS, usageFromRow, usageValues, usageValuesByName, type UsageRow } from './charging-rows.ts';

/** Every field distinct, so a value written into another column's slot cannot go unnoticed. */
const record: UsageRecord = {
  requestId: 'req_1',
  reservationId: 'rsv_req_1',
  accountId: 'acct_1',
  memberId: 'mem_1',
  keyId: 'key_1',
  model: 'm',
  upstreamModel: 'up-m',
  provider: 'p',
  deploymentId: 'dep',
  region: 'cn',
  usage: { tokensInput: 11, tokensOutput: 12, tokensCachedInput: 13, tokensCacheWrite: 14, tokensReasoning: 15 },
  usageEstimated: true,
  status: 'truncated',
  rateVersion: 'v9',
  costCoins: 16,
  costMinor: 17,
  costRequests: 18,
  charges: [{ bucketId: 'bkt_1', kind: 'addon', unit: 'tokens', currency: null, amount: 16 }],
  leakCoins: 19,
  vendorCostMicros: 20,
  latencyMs: 21,
  ttftMs: 22,
  startedAtMs: 23,
  settledAtMs: 24,
};

test('the usage INSERT values are in column order: the written-out list equals the by-name one and reads back', () => {
  const values = usageValues(record);
  assert.equal(values.length, USAGE_COLS.length);
  assert.deepEqual(values, usageValuesByName(record));
  assert.deepEqual(
    usageValues({ ...record, memberId: null, costMinor: null, costRequests: null, vendorCostMicros: null, ttftMs: null, usageEstimated: false }),
    usageValuesByName({ ...record, memberId: null, costMinor: null, costRequests: null, vendorCostMicros: null, ttftMs: null, usageEstimated: false }),
  );
  const row = Object.fromEntries(USAGE_COLS.map((c, i) => [c, values[i]])) as unknown as UsageRow;
  assert.deepEqual(usageFromRow(row), record);
});
