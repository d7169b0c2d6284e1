/**
 * What the simulated device refuses, as typed errors. Messages follow what the device shows the
 * user where Apple has a fixed text (SCEP); `detail` says what exactly was wrong.
 */

export type DeviceErrorCode =
  /** The enrollment server answered with an HTTP status the device doesn't accept. */
  | 'httpStatus'
  /** The profile came with another media type than application/x-apple-aspen-config. */
  | 'wrongContentType'
  /** The profile's CMS signature doesn't verify. */
  | 'badSignature'
  /** The signer doesn't chain to a certificate the device trusts (strict mode). */
  | 'unverifiedProfile'
  /** The profile isn't signed (strict mode, where a signature is required). */
  | 'unsignedProfile'
  /** The profile isn't a well-formed configuration profile. */
  | 'malformedProfile'
  /** The sign-in needs credentials the caller didn't give, or they were refused. */
  | 'authenticationRequired'
  /** The configuration web page couldn't be completed (no form, too many steps, another host). */
  | 'webFlow'
  /** SCEP failed; the message is the device's. */
  | 'scep'
  /** A check-in or command-channel request was refused. */
  | 'mdm'
  /** An https connection failed (TLS trust, refused connection). */
  | 'network'
  /** The device isn't in a state for this (not enrolled, no push token…). */
  | 'state';

export class DeviceError extends Error {
  constructor(
    readonly code: DeviceErrorCode,
    message: string,
    readonly detail?: string,
    readonly status?: number,
  ) {
    super(detail && detail !== message ? `${message} (${detail})` : message);
    this.name = 'DeviceError';
  }
}

/** The text iOS and macOS show when a SCEP enrollment fails. */
export const SCEP_INVALID_RESPONSE = 'The SCEP server returned an invalid response.';

export function scepError(detail: string): DeviceError {
  return new DeviceError('scep', SCEP_INVALID_RESPONSE, detail);
}

/** An error chain item of a command result (Apple's ErrorChain dictionaries). */
export interface ErrorChainItem {
  ErrorCode: number;
  ErrorDomain: string;
  LocalizedDescription: string;
  USEnglishDescription: string;
}

export function errorChainItem(code: number, domain: string, description: string): ErrorChainItem {
  return { ErrorCode: code, ErrorDomain: domain, LocalizedDescription: description, USEnglishDescription: description };
}
