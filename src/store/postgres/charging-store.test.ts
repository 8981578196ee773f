import { after } from 'node:test';
import { chargingStoreContract } from '../contract/charging-store.contract.ts';
import { openPostgresChargingStore } from './charging-store.ts';
import { afterReady, openTestDb, truncateAll } from './test-support.ts';

const t = await openTestDb();
after(() => t.drop());

chargingStoreContract('postgres', () => afterReady(truncateAll(t.db), openPostgresChargingStore(t.db)));
