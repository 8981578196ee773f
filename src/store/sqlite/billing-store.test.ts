import { billingStoreContract } from '../contract/billing-store.contract.ts';
import { openSqlite } from './db.ts';
import { openSqliteBillingStore } from './billing-store.ts';

billingStoreContract('sqlite', () => openSqliteBillingStore(openSqlite(':memory:')));
