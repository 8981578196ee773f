import { chargingStoreContract } from '../contract/charging-store.contract.ts';
import { openMemoryChargingStore } from './charging-store.ts';

chargingStoreContract('memory', () => openMemoryChargingStore());
