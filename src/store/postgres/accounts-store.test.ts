import { after } from 'node:test';
import { accountStoreContract } from '../contract/accounts-store.contract.ts';
import { openPostgresAccountStore } from './accounts-store.ts';
import { afterReady, openTestDb, truncateAll } from './test-support.ts';

const t = await openTestDb();
after(() => t.drop());

accountStoreContract('postgres', () => afterReady(truncateAll(t.db), openPostgresAccountStore(t.db)));
