import { after } from 'node:test';
import { billingStoreContract } from '../contract/billing-store.contract.ts';
import { openPostgresBillingStore } from './billing-store.ts';
import { openPostgresChargingStore } from './charging-store.ts';
import { afterReady, openTestDb, truncateAll } from './test-support.ts';

const t = await openTestDb();
after(() => t.drop());

billingStoreContract(
  'postgres',
  () => afterReady(truncateAll(t.db), openPostgresBillingStore(t.db)),
  () => {
    const ready = truncateAll(t.db);
    const charging = openPostgresChargingStore(t.db);
    return { billing: afterReady(ready, openPostgresBillingStore(t.db, { charging })), charging: afterReady(ready, charging) };
  },
);
