import type { Trx } from '../store/db.js';
import type { ManagedDevicesTable } from '../store/schema.js';

/**
 * Other capabilities react to device record changes (dynamic group membership, reports)
 * without the device module knowing them: they register a listener, which runs inside the
 * transaction that changed the device, so the reaction commits or rolls back with it.
 */
export interface DeviceChange {
  tenantId: string;
  /** Null when the device was just created. */
  before: ManagedDevicesTable | null;
  /** Null when the device was deleted. */
  after: ManagedDevicesTable | null;
}

export type DeviceChangeListener = (trx: Trx, change: DeviceChange) => Promise<void>;
