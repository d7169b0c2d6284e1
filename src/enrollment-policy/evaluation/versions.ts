import type { RestrictionPlatform } from './types.js';

/**
 * OS versions for the restriction min/max range (-E §6.2). Versions compare segment by segment as whole numbers,
 * missing trailing segments count as 0 ("15" = "15.0.0"), bounds are inclusive.
 *
 * Segments are kept as digit strings without leading zeros, so any length compares exactly.
 */
export type OsVersion = readonly string[];

/** Most segments a restriction bound may have, per the seed's formats (L7162). */
export const VERSION_SEGMENTS: Partial<Record<RestrictionPlatform, { max: number; format: string }>> = {
  ios: { max: 3, format: 'major.minor.rev' },
  windows: { max: 4, format: 'major.minor.build.rev' },
  windowsPhone: { max: 4, format: 'major.minor.build.rev' },
  android: { max: 4, format: 'major.minor.rev.build' },
  androidForWork: { max: 4, format: 'major.minor.rev.build' },
};

const MAX_SEGMENT_DIGITS = 9;

function normalise(segments: string[]): OsVersion {
  return segments.map((s) => s.replace(/^0+(?=\d)/, ''));
}

/**
 * A restriction bound, as an admin types it: 1 to the platform's segment count, digits only.
 * Fewer segments are accepted ("15.0" for iOS) because admins write them; more are refused.
 * Returns an error sentence naming the format, or the version.
 */
export function parseRestrictionVersion(text: string, platform: RestrictionPlatform): { version: OsVersion } | { error: string } {
  const spec = VERSION_SEGMENTS[platform];
  if (!spec) return { error: `OS version ranges can't be set for the ${platform} platform` };
  const trimmed = text.trim();
  const segments = trimmed.split('.');
  const wellFormed = trimmed !== '' && segments.every((s) => s.length >= 1 && s.length <= MAX_SEGMENT_DIGITS && /^\d+$/.test(s));
  if (!wellFormed || segments.length > spec.max) {
    return { error: `'${text}' is not a ${platform} version; use ${spec.format} (digits, at most ${spec.max} parts)` };
  }
  return { version: normalise(segments) };
}

// A device's reported version: 1-4 numeric parts, then optionally a suffix that isn't part of the number
// (Apple's "14.1.2a", macOS "10.15.3 (19D2064)").
const DEVICE_VERSION = new RegExp(`^\\s*(\\d{1,${MAX_SEGMENT_DIGITS}}(?:\\.\\d{1,${MAX_SEGMENT_DIGITS}}){0,3})(?![\\d.])`);

/** The version a device reports, or undefined when it can't be read. */
export function parseDeviceVersion(text: string | null | undefined): OsVersion | undefined {
  if (typeof text !== 'string') return undefined;
  const m = DEVICE_VERSION.exec(text);
  return m ? normalise(m[1]!.split('.')) : undefined;
}

function compareSegment(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** -1, 0 or 1; missing trailing segments count as 0. */
export function compareVersions(a: OsVersion, b: OsVersion): -1 | 0 | 1 {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareSegment(a[i] ?? '0', b[i] ?? '0');
    if (c !== 0) return c < 0 ? -1 : 1;
  }
  return 0;
}

export function formatVersion(v: OsVersion): string {
  return v.join('.');
}

/** The major version as a number (for "before Android 12" rules), or undefined. */
export function majorVersion(text: string | null | undefined): number | undefined {
  const v = parseDeviceVersion(text);
  return v ? Number(v[0]) : undefined;
}
