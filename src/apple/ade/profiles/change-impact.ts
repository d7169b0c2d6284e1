/**
 * What an edit to a profile does to devices already enrolled with it. The seed (004-D §2.6):
 * changes "don't take effect on assigned devices until the device is reset and reactivated",
 * the device name template excepted, which is applied "upon each successive check-in".
 */
import { toAppleProfile } from './apple-profile.js';
import type { DepProfileContent } from './model.js';

export type ChangeTiming = 'nextCheckIn' | 'afterReset' | 'adminOnly';

export interface ProfileChangeImpact {
  /** Graph properties whose value changed. */
  changed: string[];
  /** Reach enrolled devices only after a factory reset and a new Setup Assistant run. */
  appliesAfterReset: string[];
  /** Reach enrolled devices at their next check-in (the device name template). */
  appliesAtNextCheckIn: string[];
  /** Admin-only: the name and description have no effect on devices. */
  adminOnly: string[];
  /** Enrolled devices become "pending until reset". */
  marksDevicesPendingReset: boolean;
  /** The profile must be defined anew at Apple (Apple profiles are immutable; a change is a new profile_uuid). */
  appleProfileChanged: boolean;
}

/** When a change to a property reaches enrolled devices. */
export function changeTiming(property: string): ChangeTiming {
  if (property === 'deviceNameTemplate') return 'nextCheckIn';
  if (property === 'displayName' || property === 'description') return 'adminOnly';
  return 'afterReset';
}

const canonical = (v: unknown) => JSON.stringify(v);

const PROBE = { serverUrl: 'https://probe.invalid', enrollmentUrl: '/enroll', configurationWebUrl: '/sign-in', orgMagic: 'probe' };

/**
 * Compares two versions of a profile. `adminAccountPasswordChanged` (macOS) reports a new local
 * admin password, which the settings don't hold; it reaches Macs only at their next setup.
 */
export function profileChangeImpact(before: DepProfileContent, after: DepProfileContent, adminAccountPasswordChanged = false): ProfileChangeImpact {
  if (before.platform !== after.platform) throw new Error("A profile's platform can't change");
  const a: Record<string, unknown> = { displayName: before.displayName, description: before.description, ...before.settings };
  const b: Record<string, unknown> = { displayName: after.displayName, description: after.description, ...after.settings };
  const changed = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => canonical(a[k]) !== canonical(b[k]));
  if (adminAccountPasswordChanged) changed.push('adminAccountPassword');
  const by = (t: ChangeTiming) => changed.filter((k) => changeTiming(k) === t);
  const appliesAfterReset = by('afterReset');
  return {
    changed,
    appliesAfterReset,
    appliesAtNextCheckIn: by('nextCheckIn'),
    adminOnly: by('adminOnly'),
    marksDevicesPendingReset: appliesAfterReset.length > 0,
    appleProfileChanged: canonical(toAppleProfile(before, PROBE)) !== canonical(toAppleProfile(after, PROBE)),
  };
}
