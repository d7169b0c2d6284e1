/*
 * Device categories (requirements-004-A §13, seed L1525–1581). Pure: names and the "no category" state.
 */

export const DEVICE_CATEGORY_TYPE = 'microsoft.graph.deviceCategory';
/** object_type in object_scope_tags. */
export const DEVICE_CATEGORY_OBJECT = 'deviceCategory';

export const DEVICE_CATEGORY_LIMITS = { displayName: 128, description: 1024 } as const;

/** "When you delete a category, devices assigned to it appear as Unassigned" (L1564). */
export const UNASSIGNED = 'Unassigned';
/** The id of the pseudo-category a device without one reports (Intune uses the all-zero GUID). */
export const NO_CATEGORY_ID = '00000000-0000-0000-0000-000000000000';

/** Pure: names compare without case, as dynamic group rules compare them (`-eq` ignores case). */
export const categoryNameKey = (name: string): string => name.trim().toLowerCase();

/** Pure: why a category name is refused, or undefined. */
export function categoryNameProblem(name: string): string | undefined {
  const v = name.trim();
  if (v === '') return 'must not be empty.';
  if (v.length > DEVICE_CATEGORY_LIMITS.displayName) return `must be at most ${DEVICE_CATEGORY_LIMITS.displayName} characters.`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) return 'must not contain control characters.';
  // It is what devices without a category show; a real category of that name couldn't be told apart.
  if (categoryNameKey(v) === UNASSIGNED.toLowerCase()) return `'${UNASSIGNED}' is reserved for devices without a category.`;
  return undefined;
}

/** Pure: the device columns for "no category": a removed or deleted category shows as Unassigned. */
export const noCategory = (): { id: null; displayName: string } => ({ id: null, displayName: UNASSIGNED });
