import { after } from 'node:test';
import { responseStoreContract } from '../contract/response-store.contract.ts';
import { openPostgresResponseStore } from './response-store.ts';
import { afterReady, openTestDb, truncateAll } from './test-support.ts';

const t = await openTestDb();
after(() => t.drop());

responseStoreContract('postgres', () => afterReady(truncateAll(t.db), openPostgresResponseStore(t.db)));
