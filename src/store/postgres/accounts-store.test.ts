import { after, test } from 'node:test';
import { accountStoreContract } from '../contract/accounts-store.contract.ts';
import { openPostgresAccountStore } from './accounts-store.ts';
import { afterReady, testDbOrSkip, truncateAll } from './test-support.ts';

const t = await testDbOrSkip();
if (typeof t === 'string') test('AccountStore contract: postgres', { skip: t }, () => {});
else {
  after(() => t.drop());
  accountStoreContract('postgres', () => afterReady(truncateAll(t.db), openPostgresAccountStore(t.db)));
}
