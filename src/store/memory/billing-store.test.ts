import { billingStoreContract } from '../contract/billing-store.contract.ts';
import { createMemoryBillingStore } from './billing-store.ts';
import { openMemoryChargingStore } from './charging-store.ts';

billingStoreContract(
  'memory',
  () => createMemoryBillingStore(),
  () => {
    const charging = openMemoryChargingStore();
    return { billing: createMemoryBillingStore({ charging }), charging };
  },
);
