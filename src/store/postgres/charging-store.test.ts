import { after, test } from 'node:test';
import { chargingStoreContract } from '../contract/charging-store.contract.ts';
import { openPostgresChargingStore } from './charging-store.ts';
import { afterReady, testDbOrSkip, truncateAll } from './test-support.ts';

const t = await testDbOrSkip();
if (typeof t === 'string') test('ChargingStore contract: postgres', { skip: t }, () => {});
else {
  after(() => t.drop());
  chargingStoreContract('postgres', () => afterReady(truncateAll(t.db), openPostgresChargingStore(t.db)));
}
