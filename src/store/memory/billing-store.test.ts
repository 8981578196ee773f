import { billingStoreContract } from '../contract/billing-store.contract.ts';
import { createMemoryBillingStore } from './billing-store.ts';

billingStoreContract('memory', () => createMemoryBillingStore());
