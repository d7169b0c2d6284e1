/**
 * Apple OS version strings as devices report them (MachineInfo OS_VERSION, the Setup Assistant
 * minimums in the docs): "13", "13.0", "11.3.1", "17.4.1", and Rapid Security Responses
 * such as "17.1 (a)". Missing components count as 0, so "13" = "13.0" = "13.0.0".
 */

export type AppleVersion = readonly number[];

const VERSION = /^(\d{1,6})(?:\.(\d{1,6}))?(?:\.(\d{1,6}))?(?:\.(\d{1,6}))?(?:\s*\([a-z]\))?$/i;

/** The numeric components of an Apple version, or null when the string isn't one. */
export function parseAppleVersion(version: string | null | undefined): AppleVersion | null {
  if (typeof version !== 'string') return null;
  const m = VERSION.exec(version.trim());
  if (!m) return null;
  const parts = m.slice(1).filter((p): p is string => p !== undefined).map(Number);
  // Trailing zeros carry no meaning ("13.0" = "13").
  while (parts.length > 1 && parts[parts.length - 1] === 0) parts.pop();
  return parts;
}

/** -1, 0 or 1. Throws on a string that isn't a version: callers compare known-good constants. */
export function compareAppleVersions(a: string | AppleVersion, b: string | AppleVersion): -1 | 0 | 1 {
  const pa = typeof a === 'string' ? parseAppleVersion(a) : a;
  const pb = typeof b === 'string' ? parseAppleVersion(b) : b;
  if (!pa || !pb) throw new Error(`Not an Apple version: ${String(pa ? b : a)}`);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * Whether `version` is at least `minimum`. An unknown or unparseable device version counts as
 * current (every minimum met): ADE devices report OS_VERSION, and today's fleet is far past the
 * minimums this module compares against.
 */
export function isAtLeast(version: string | null | undefined, minimum: string): boolean {
  const v = parseAppleVersion(version);
  if (!v) return true;
  return compareAppleVersions(v, minimum) >= 0;
}

/** Whether a device version is known and below `minimum` (the complement of isAtLeast for known versions). */
export function isBelow(version: string | null | undefined, minimum: string): boolean {
  return !isAtLeast(version, minimum);
}
