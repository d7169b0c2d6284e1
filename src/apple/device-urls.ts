/**
 * Every URL an Apple device is given, in one place. They are absolute https URLs under
 * OPENENROLL_PUBLIC_URL (Apple devices refuse plain http for MDM), one set per tenant.
 */

export interface AppleDeviceUrls {
  /** com.apple.mdm ServerURL: command polling (PUT). */
  serverUrl: string;
  /** com.apple.mdm CheckInURL: Authenticate, TokenUpdate, CheckOut, … (PUT). */
  checkInUrl: string;
  /** SCEP endpoint (…/pkiclient.exe style query operations are appended by clients). */
  scepUrl: string;
  /** User-initiated enrollment web page. */
  userEnrollmentPage: string;
}

const seg = encodeURIComponent;

export function appleDevicePaths(tenantId: string) {
  return {
    server: `/mdm/apple/${seg(tenantId)}/server`,
    checkIn: `/mdm/apple/${seg(tenantId)}/checkin`,
    scep: `/scep/${seg(tenantId)}`,
    userEnrollmentPage: `/enroll/apple/${seg(tenantId)}`,
    /** ADE profile `url` (MachineInfo POST) and `configuration_web_url` (its /web page). */
    ade: (profileId: string) => `/enroll/apple/ade/${seg(tenantId)}/${seg(profileId)}`,
    /** Apple Configurator profile URL (Setup Assistant enrollment through Configurator). */
    configurator: (profileId: string) => `/enroll/apple/configurator/${seg(tenantId)}/${seg(profileId)}`,
  };
}

export function appleDeviceUrls(publicUrl: string | undefined, tenantId: string): AppleDeviceUrls {
  if (!publicUrl) throw new Error('OPENENROLL_PUBLIC_URL is not set, and Apple devices need the https URL they enroll at');
  const p = appleDevicePaths(tenantId);
  return {
    serverUrl: `${publicUrl}${p.server}`,
    checkInUrl: `${publicUrl}${p.checkIn}`,
    scepUrl: `${publicUrl}${p.scep}`,
    userEnrollmentPage: `${publicUrl}${p.userEnrollmentPage}`,
  };
}
