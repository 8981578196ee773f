/**
 * What the engine is built from and what it offers: kept apart from types.ts so the value types know nothing of
 * the store port or the management API (no import cycle among charging's files).
 */
import type { Clock, IdGenerator } from '../core/index.ts';
import type { ChargingManagement } from './management-types.ts';
import type { ChargingStore } from './store.ts';
import type { ChargingConfig, ChargingEngine, RateTable } from './types.ts';

export interface ChargingDeps {
  store: ChargingStore;
  clock: Clock;
  ids: IdGenerator;
  rates: () => RateTable;
  config?: Partial<ChargingConfig>;
}

export type ChargingService = ChargingEngine & ChargingManagement;
