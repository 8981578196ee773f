import { accountStoreContract } from '../contract/accounts-store.contract.ts';
import { openSqliteAccountStore } from './accounts-store.ts';
import { openSqlite } from './db.ts';

accountStoreContract('sqlite', () => openSqliteAccountStore(openSqlite(':memory:')));
