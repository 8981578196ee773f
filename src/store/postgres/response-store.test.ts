import { after, test } from 'node:test';
import { responseStoreContract } from '../contract/response-store.contract.ts';
import { openPostgresResponseStore } from './response-store.ts';
import { afterReady, testDbOrSkip, truncateAll } from './test-support.ts';

const t = await testDbOrSkip();
if (typeof t === 'string') test('ResponseStore contract (postgres)', { skip: t }, () => {});
else {
  after(() => t.drop());
  responseStoreContract('postgres', () => afterReady(truncateAll(t.db), openPostgresResponseStore(t.db)));
}
