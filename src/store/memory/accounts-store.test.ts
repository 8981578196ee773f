import { accountStoreContract } from '../contract/accounts-store.contract.ts';
import { createMemoryAccountStore } from './accounts-store.ts';

accountStoreContract('memory', () => createMemoryAccountStore());
