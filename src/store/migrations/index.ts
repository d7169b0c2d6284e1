import type { Migration } from 'kysely';
import * as m0001 from './0001_foundation.js';
import * as m0002 from './0002_apple_ade.js';

/**
 * The one ordered list of migrations for both dialects. Later capabilities append their own
 * module here; names sort in application order.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': m0001,
  '0002_apple_ade': m0002,
};
