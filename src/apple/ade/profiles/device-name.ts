/**
 * The ADE device name template ("Apply device name template" / "Device Name Template").
 * Intune: the template "can include the device type and serial number. It can't contain more
 * than 63 characters, including the variables. Example: {{DEVICETYPE}}-{{SERIAL}}". Those two are
 * the only variables; {{SERIALNUMBER}}, {{UDID}} and the like belong to the iOS "device name"
 * configuration profile, not to enrollment profiles. Variables match regardless of case.
 */
import { PROFILE_LIMITS } from './model.js';

export const DEVICE_NAME_VARIABLES = ['{{SERIAL}}', '{{DEVICETYPE}}'] as const;

const VARIABLE = /\{\{([^{}]*)\}\}/g;
const KNOWN = new Set(['SERIAL', 'DEVICETYPE']);
/** C0/C1 controls and line/paragraph separators: never part of a name or label. */
export function hasControlCharacters(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return true;
  }
  return false;
}

export const codePoints = (s: string) => [...s].length;

/** Why a (non-empty) template is unacceptable, or null. */
export function deviceNameTemplateProblem(template: string): string | null {
  if (template.trim() === '') return 'must not be blank; use null to turn the device name template off';
  const length = codePoints(template);
  if (length > PROFILE_LIMITS.deviceNameTemplate) {
    return `must be at most ${PROFILE_LIMITS.deviceNameTemplate} characters including the variables (it has ${length})`;
  }
  if (hasControlCharacters(template)) return 'must not contain control characters or line breaks';
  for (const m of template.matchAll(VARIABLE)) {
    const name = (m[1] ?? '').trim().toUpperCase();
    if (!KNOWN.has(name)) return `has an unknown variable '${m[0]}': the variables are {{SERIAL}} and {{DEVICETYPE}}`;
  }
  const rest = template.replace(VARIABLE, '');
  if (rest.includes('{{') || rest.includes('}}')) return "has an unbalanced '{{' or '}}': variables are written {{SERIAL}} and {{DEVICETYPE}}";
  return null;
}

/**
 * The name a device gets from a template, at enrollment and at each check-in. `deviceType` is
 * Apple's device family ("iPhone", "iPad", "iPod", "Mac"). Cut to 63 characters, since a serial
 * can be longer than the "{{SERIAL}}" it replaces.
 */
export function renderDeviceName(template: string, device: { serialNumber: string; deviceType: string }): string {
  const name = template.replace(VARIABLE, (whole, inner: string) => {
    const v = inner.trim().toUpperCase();
    return v === 'SERIAL' ? device.serialNumber : v === 'DEVICETYPE' ? device.deviceType : whole;
  });
  return [...name].slice(0, PROFILE_LIMITS.deviceNameTemplate).join('');
}
