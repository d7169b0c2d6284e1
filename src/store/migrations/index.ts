import type { Migration } from 'kysely';
import * as m0001 from './0001_foundation.js';

/**
 * The one ordered list of migrations for both dialects. Later capabilities append their own
 * module here; names sort in application order.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': m0001,
};
