/** The enrollment decision engine (pure): evaluation, reason catalogue, priorities, filters and counting rules. */
export * from './types.js';
export * from './evaluate.js';
export * from './reasons.js';
export * from './priorities.js';
export * from './filters.js';
export * from './device-limit.js';
export * from './ownership.js';
export * from './selection.js';
export * from './versions.js';
