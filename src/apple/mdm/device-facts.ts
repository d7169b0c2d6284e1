import type { DeviceInput } from '../../devices/model.js';
import type { DeviceType } from '../../devices/enums.js';
import type { PlistValue } from '../../shared/plist.js';
import { isPlistDict, type DeviceFacts } from './messages.js';

/**
 * Pure: what Apple's device identifiers mean for the managedDevice record (platform, device type,
 * the "device type" a name template uses), and how a DeviceInformation answer maps onto it.
 */

export type AppleFamily = 'iPhone' | 'iPad' | 'iPod' | 'Mac' | 'AppleTV' | 'Vision' | 'Watch' | 'unknown';

/** Apple's hardware family from ProductName ("iPhone15,2", "iPad13,1", "MacBookPro18,3", "iMac14,2") or ModelName. */
export function appleFamily(facts: Pick<DeviceFacts, 'productName' | 'model' | 'modelName'>): AppleFamily {
  for (const v of [facts.productName, facts.model, facts.modelName]) {
    const s = (v ?? '').trim().toLowerCase();
    if (!s) continue;
    if (s.startsWith('iphone')) return 'iPhone';
    if (s.startsWith('ipad')) return 'iPad';
    if (s.startsWith('ipod')) return 'iPod';
    if (s.startsWith('mac') || s.startsWith('imac') || s.startsWith('virtualmac') || s.startsWith('xserve')) return 'Mac';
    if (s.startsWith('appletv')) return 'AppleTV';
    if (s.startsWith('realitydevice') || s.startsWith('vision')) return 'Vision';
    if (s.startsWith('watch')) return 'Watch';
  }
  return 'unknown';
}

/** Graph deviceType and operatingSystem for a family (Intune reports iPads as iPadOS and Macs as macMDM). */
export function graphPlatform(family: AppleFamily, fallback: 'iOS' | 'macOS'): { deviceType: DeviceType; operatingSystem: string } {
  switch (family) {
    case 'iPhone':
      return { deviceType: 'iPhone', operatingSystem: 'iOS' };
    case 'iPad':
      return { deviceType: 'iPad', operatingSystem: 'iPadOS' };
    case 'iPod':
      return { deviceType: 'iPod', operatingSystem: 'iOS' };
    case 'Mac':
      return { deviceType: 'macMDM', operatingSystem: 'macOS' };
    case 'AppleTV':
      return { deviceType: 'tvOS', operatingSystem: 'tvOS' };
    case 'Vision':
      return { deviceType: 'visionOS', operatingSystem: 'visionOS' };
    default:
      return fallback === 'macOS' ? { deviceType: 'macMDM', operatingSystem: 'macOS' } : { deviceType: 'iPhone', operatingSystem: 'iOS' };
  }
}

/** The {{DEVICETYPE}} of an ADE device name template: "iPhone", "iPad", "iPod" or "Mac". */
export function templateDeviceType(family: AppleFamily, facts: Pick<DeviceFacts, 'modelName'>): string {
  if (family === 'unknown') return facts.modelName ?? 'Device';
  return family;
}

const text = (v: PlistValue | undefined, max = 256): string | undefined =>
  typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, max) : undefined;

/** DeviceInformation QueryResponses as DeviceFacts plus the other properties we keep. */
export interface InventoryFacts extends DeviceFacts {
  wifiMac?: string;
  phoneNumber?: string;
  isSupervised?: boolean;
  awaitingConfiguration?: boolean;
}

export function inventoryFacts(queryResponses: PlistValue | undefined): InventoryFacts {
  if (!isPlistDict(queryResponses)) return {};
  const q = queryResponses;
  const out: InventoryFacts = {};
  const set = <K extends keyof InventoryFacts>(k: K, v: InventoryFacts[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set('deviceName', text(q.DeviceName));
  set('model', text(q.Model));
  set('modelName', text(q.ModelName));
  set('productName', text(q.ProductName));
  set('osVersion', text(q.OSVersion, 64));
  set('buildVersion', text(q.BuildVersion, 64));
  set('serialNumber', text(q.SerialNumber, 128));
  set('imei', text(q.IMEI, 64));
  set('meid', text(q.MEID, 64));
  set('wifiMac', text(q.WiFiMAC, 64));
  set('phoneNumber', text(q.PhoneNumber, 64));
  if (typeof q.IsSupervised === 'boolean') out.isSupervised = q.IsSupervised;
  if (typeof q.AwaitingConfiguration === 'boolean') out.awaitingConfiguration = q.AwaitingConfiguration;
  return out;
}

/**
 * The managedDevice properties the facts set. `model` is Apple's hardware identifier
 * (ProductName, e.g. "iPhone15,2"), the one value every Apple device reports the same way.
 */
export function deviceInputFromFacts(facts: InventoryFacts, fallbackPlatform: 'iOS' | 'macOS'): DeviceInput {
  const family = appleFamily(facts);
  const { deviceType, operatingSystem } = graphPlatform(family, fallbackPlatform);
  const input: DeviceInput = { manufacturer: 'Apple', deviceType, operatingSystem };
  const model = facts.productName ?? facts.model;
  if (model) input.model = model;
  if (facts.osVersion) input.osVersion = facts.osVersion;
  if (facts.deviceName) input.deviceName = facts.deviceName;
  if (facts.serialNumber) input.serialNumber = facts.serialNumber;
  // Devices write IMEIs in groups ("35 391711 234567 8"); identifiers compare digits.
  if (facts.imei) input.imei = facts.imei.replace(/\s+/g, '');
  if (facts.meid) input.meid = facts.meid.replace(/\s+/g, '');
  if (facts.wifiMac) input.wiFiMacAddress = facts.wifiMac;
  if (facts.phoneNumber) input.phoneNumber = facts.phoneNumber;
  if (facts.isSupervised !== undefined) input.isSupervised = facts.isSupervised;
  return input;
}

/** The platform a device is, from the intent when known, else from its identifiers. */
export function platformOf(intentPlatform: string | null | undefined, facts: DeviceFacts): 'iOS' | 'macOS' {
  if (intentPlatform === 'iOS' || intentPlatform === 'macOS') return intentPlatform;
  return appleFamily(facts) === 'Mac' ? 'macOS' : 'iOS';
}

/** What we keep of a ProfileList answer: identifiers and names (no signer certificates). */
export interface InstalledProfile {
  payloadIdentifier: string | null;
  payloadUuid: string | null;
  payloadDisplayName: string | null;
  payloadOrganization: string | null;
  payloadVersion: number | null;
  isManaged: boolean | null;
  isEncrypted: boolean | null;
  payloadRemovalDisallowed: boolean | null;
}

export function installedProfiles(list: PlistValue | undefined, max = 500): InstalledProfile[] {
  if (!Array.isArray(list)) return [];
  return list
    .filter(isPlistDict)
    .slice(0, max)
    .map((p) => ({
      payloadIdentifier: text(p.PayloadIdentifier, 512) ?? null,
      payloadUuid: text(p.PayloadUUID, 128) ?? null,
      payloadDisplayName: text(p.PayloadDisplayName, 512) ?? null,
      payloadOrganization: text(p.PayloadOrganization, 512) ?? null,
      payloadVersion: typeof p.PayloadVersion === 'number' ? p.PayloadVersion : null,
      isManaged: typeof p.IsManaged === 'boolean' ? p.IsManaged : null,
      isEncrypted: typeof p.IsEncrypted === 'boolean' ? p.IsEncrypted : null,
      payloadRemovalDisallowed: typeof p.PayloadRemovalDisallowed === 'boolean' ? p.PayloadRemovalDisallowed : null,
    }));
}
