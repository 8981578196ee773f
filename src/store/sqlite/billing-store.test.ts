import { billingStoreContract } from '../contract/billing-store.contract.ts';
import { openSqlite } from './db.ts';
import { openSqliteBillingStore } from './billing-store.ts';
import { openSqliteChargingStore } from './charging-store.ts';

billingStoreContract(
  'sqlite',
  () => openSqliteBillingStore(openSqlite(':memory:')),
  () => {
    const db = openSqlite(':memory:');
    const charging = openSqliteChargingStore(db);
    return { billing: openSqliteBillingStore(db, { charging }), charging };
  },
);
