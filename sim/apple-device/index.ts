import crypto from 'node:crypto';
import { AppleDevice, type AppleDeviceOptions, type ApplePlatform } from './device.js';

/**
 * A strict simulator of Apple devices (iOS, iPadOS, macOS) for tests, demos and benchmarks: it
 * talks to OpenEnroll only over the wire, through Apple's public protocols. See README.md.
 */

export { AppleDevice } from './device.js';
export type {
  AdeEnrollOptions,
  AppleDeviceOptions,
  ApplePlatform,
  CloudConfigurationSource,
  EnrollmentResult,
  PolledCommand,
  PollResult,
  PushSource,
} from './device.js';
export { createDeviceCa, type DeviceCa } from './device-ca.js';
export { DeviceError, SCEP_INVALID_RESPONSE, type DeviceErrorCode, type ErrorChainItem } from './errors.js';
export { SUPPORTED_COMMANDS, type CommandResult, type InstalledProfile } from './commands.js';
export type { MdmSettings } from './profile.js';
export type { Credentials } from './html.js';

export function createAppleDevice(opts: AppleDeviceOptions): AppleDevice {
  return new AppleDevice(opts);
}

/** Current hardware identifiers and builds for the DEP models the ABM simulator generates (and a few more). */
const MODELS: Record<string, { model: string; platform: ApplePlatform; osVersion: string; buildVersion: string }> = {
  'iPhone 15': { model: 'iPhone15,4', platform: 'iOS', osVersion: '18.1', buildVersion: '22B83' },
  'iPhone 15 Pro': { model: 'iPhone16,1', platform: 'iOS', osVersion: '18.1', buildVersion: '22B83' },
  'iPhone 14': { model: 'iPhone14,7', platform: 'iOS', osVersion: '17.6.1', buildVersion: '21G93' },
  'iPhone 14 Pro': { model: 'iPhone15,2', platform: 'iOS', osVersion: '17.6.1', buildVersion: '21G93' },
  'iPad Air (5th generation)': { model: 'iPad13,16', platform: 'iPadOS', osVersion: '18.1', buildVersion: '22B83' },
  'MacBook Air (M2, 2022)': { model: 'Mac14,2', platform: 'macOS', osVersion: '15.1', buildVersion: '24B83' },
  'MacBook Pro (16-inch, 2021)': { model: 'MacBookPro18,1', platform: 'macOS', osVersion: '14.7.1', buildVersion: '23H222' },
};

/**
 * A stable, valid IMEI for a serial: reporting body "35", twelve digits from a hash of the whole serial,
 * and the Luhn check digit. (Only the serial's digits used to count, so serials differing in letters,
 * as real ones do, shared an IMEI, and the server rightly took them for one device.)
 */
export function imeiFor(serial: string): string {
  const hash = crypto.createHash('sha256').update(`imei:${serial}`).digest();
  const body = `35${(hash.readBigUInt64BE(0) % 10n ** 12n).toString().padStart(12, '0')}`;
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    // Luhn from the right of the full 15 digits: the body's last digit is doubled.
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return `${body}${(10 - (sum % 10)) % 10}`;
}

/**
 * Options for the device behind an ABM/DEP record (serial_number, model as Apple lists it,
 * device_family): a plausible hardware identifier, OS and a Setup Assistant device name.
 */
export function deviceOptionsFor(record: { serial_number: string; model?: string; device_family?: string }, extra: Partial<AppleDeviceOptions> = {}): AppleDeviceOptions {
  const known = record.model ? MODELS[record.model] : undefined;
  const family = record.device_family ?? (known?.platform === 'macOS' ? 'Mac' : known?.platform === 'iPadOS' ? 'iPad' : 'iPhone');
  const fallback =
    family === 'Mac'
      ? { model: 'Mac14,2', platform: 'macOS' as const, osVersion: '15.1', buildVersion: '24B83' }
      : family === 'iPad'
        ? { model: 'iPad13,16', platform: 'iPadOS' as const, osVersion: '18.1', buildVersion: '22B83' }
        : { model: 'iPhone15,4', platform: 'iOS' as const, osVersion: '18.1', buildVersion: '22B83' };
  const m = known ?? fallback;
  return {
    platform: m.platform,
    serial: record.serial_number,
    model: m.model,
    osVersion: m.osVersion,
    buildVersion: m.buildVersion,
    deviceName: family === 'Mac' ? 'MacBook' : family,
    ...(m.platform === 'iOS' ? { imei: imeiFor(record.serial_number) } : {}),
    ...extra,
  };
}
