import Database from 'better-sqlite3';
import { responseStoreContract } from '../contract/response-store.contract.ts';
import { createMemoryResponseStore } from '../memory/response-store.ts';
import { openSqliteResponseStore } from './response-store.ts';

responseStoreContract('sqlite', () => openSqliteResponseStore(new Database(':memory:')));
responseStoreContract('memory', () => createMemoryResponseStore());
