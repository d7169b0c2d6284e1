import type { PlistValue } from '../../shared/plist.js';

/**
 * Pure: the check-in messages (Apple's mdm/checkin/*.yaml) and command reports a device sends,
 * read from an already parsed plist dictionary and checked key by key. Nothing here touches I/O.
 */

export class MessageError extends Error {
  constructor(
    message: string,
    /** The offending key, for logs. */
    readonly key?: string,
  ) {
    super(message);
    this.name = 'MessageError';
  }
}

/** Shared iPad users all connect with this UserID; UserShortName (the Managed Apple ID) tells them apart. */
export const SHARED_IPAD_USER_ID = 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF';

export const CHECKIN_MESSAGE_TYPES = [
  'Authenticate',
  'TokenUpdate',
  'CheckOut',
  'UserAuthenticate',
  'DeclarativeManagement',
  'GetBootstrapToken',
  'SetBootstrapToken',
  'GetToken',
] as const;
export type CheckinMessageType = (typeof CHECKIN_MESSAGE_TYPES)[number];

export type EnrollmentType = 'Device' | 'User' | 'UserEnrollmentDevice' | 'UserEnrollmentUser';

/** Which channel a message is for: the device channel (UDID or EnrollmentID), or a user channel under it. */
export interface Channel {
  type: EnrollmentType;
  /** Unique per tenant: 'device:<UDID>' or 'ue:<EnrollmentID>'. */
  deviceKey: string;
  /** deviceKey for the device channel; '<deviceKey>/user:<id>' for a user channel. */
  key: string;
  isUserChannel: boolean;
  udid: string | null;
  enrollmentId: string | null;
  /** UserID (macOS), EnrollmentUserID (User Enrollment) or UserShortName (Shared iPad). */
  userId: string | null;
  userShortName: string | null;
  userLongName: string | null;
}

/** What Authenticate (and later DeviceInformation) says about the device. */
export interface DeviceFacts {
  deviceName?: string;
  model?: string;
  modelName?: string;
  productName?: string;
  osVersion?: string;
  buildVersion?: string;
  serialNumber?: string;
  imei?: string;
  meid?: string;
}

export type CheckinMessage =
  | { type: 'Authenticate'; channel: Channel; topic: string; device: DeviceFacts }
  | {
      type: 'TokenUpdate';
      channel: Channel;
      topic: string;
      token: Buffer;
      pushMagic: string;
      unlockToken: Buffer | null;
      awaitingConfiguration: boolean;
      notOnConsole: boolean;
    }
  | { type: 'CheckOut'; channel: Channel; topic: string | null }
  | { type: 'UserAuthenticate'; channel: Channel; digestResponse: string | null }
  | { type: 'DeclarativeManagement'; channel: Channel; endpoint: string; data: Buffer | null }
  | { type: 'GetBootstrapToken'; channel: Channel; awaitingConfiguration: boolean }
  | { type: 'SetBootstrapToken'; channel: Channel; bootstrapToken: Buffer | null; awaitingConfiguration: boolean }
  | { type: 'GetToken'; channel: Channel; tokenServiceType: string };

export const REPORT_STATUSES = ['Idle', 'Acknowledged', 'Error', 'CommandFormatError', 'NotNow'] as const;
export type ReportStatus = (typeof REPORT_STATUSES)[number];

export interface ErrorChainItem {
  errorCode: number | null;
  errorDomain: string | null;
  localizedDescription: string | null;
  usEnglishDescription: string | null;
}

export interface CommandReport {
  channel: Channel;
  status: ReportStatus;
  /** Absent only for Idle. */
  commandUuid: string | null;
  errorChain: ErrorChainItem[] | null;
  /** The whole report (results included). */
  body: Record<string, PlistValue>;
}

// ---- limits ----------------------------------------------------------------------------------

export const LIMITS = {
  /** UDIDs are 25–40 characters; EnrollmentIDs and user GUIDs are shorter. */
  identifier: 128,
  text: 1024,
  topic: 255,
  /** APNs device tokens are 32 bytes today; Apple allows for growth. */
  pushToken: 256,
  pushMagic: 256,
  unlockToken: 64 * 1024,
  bootstrapToken: 64 * 1024,
  declarativeData: 1024 * 1024,
  endpoint: 1024,
  errorChain: 32,
} as const;

const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

// ---- readers ---------------------------------------------------------------------------------

function isDict(v: unknown): v is Record<string, PlistValue> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Date);
}

function hasControl(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function str(d: Record<string, PlistValue>, key: string, opts: { required: true; max?: number }): string;
function str(d: Record<string, PlistValue>, key: string, opts?: { required?: false; max?: number }): string | undefined;
function str(d: Record<string, PlistValue>, key: string, opts: { required?: boolean; max?: number } = {}): string | undefined {
  const v = d[key];
  if (v === undefined) {
    if (opts.required) throw new MessageError(`${key} is required`, key);
    return undefined;
  }
  if (typeof v !== 'string') throw new MessageError(`${key} must be a string`, key);
  if (v.length > (opts.max ?? LIMITS.text)) throw new MessageError(`${key} is longer than ${opts.max ?? LIMITS.text} characters`, key);
  if (hasControl(v)) throw new MessageError(`${key} contains control characters`, key);
  if (opts.required && v.trim() === '') throw new MessageError(`${key} is empty`, key);
  return v;
}

function identifier(d: Record<string, PlistValue>, key: string): string | undefined {
  const v = str(d, key, { max: LIMITS.identifier });
  if (v === undefined || v === '') return undefined;
  if (!IDENTIFIER.test(v)) throw new MessageError(`${key} is not a device identifier`, key);
  return v;
}

function bool(d: Record<string, PlistValue>, key: string): boolean {
  const v = d[key];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new MessageError(`${key} must be a boolean`, key);
  return v;
}

function data(d: Record<string, PlistValue>, key: string, max: number, required: boolean): Buffer | null {
  const v = d[key];
  if (v === undefined) {
    if (required) throw new MessageError(`${key} is required`, key);
    return null;
  }
  if (!Buffer.isBuffer(v)) throw new MessageError(`${key} must be data`, key);
  if (v.length > max) throw new MessageError(`${key} is larger than ${max} bytes`, key);
  if (required && v.length === 0) throw new MessageError(`${key} is empty`, key);
  return v;
}

/** The channel a message names (NanoMDM's resolution: UDID first, then EnrollmentID; a user id makes it a user channel). */
export function channelOf(d: Record<string, PlistValue>): Channel {
  const udid = identifier(d, 'UDID');
  const enrollmentId = identifier(d, 'EnrollmentID');
  const userLongName = str(d, 'UserLongName', { max: LIMITS.text }) ?? null;
  const userShortName = str(d, 'UserShortName', { max: LIMITS.text }) ?? null;
  if (udid) {
    const userId = identifier(d, 'UserID');
    const deviceKey = `device:${udid}`;
    if (!userId) return { type: 'Device', deviceKey, key: deviceKey, isUserChannel: false, udid, enrollmentId: null, userId: null, userShortName: null, userLongName: null };
    // Shared iPad users share one UserID; their short name (Managed Apple ID) is who they are.
    let id = userId;
    if (userId.toUpperCase() === SHARED_IPAD_USER_ID) {
      if (!userShortName) throw new MessageError('UserShortName is required for a Shared iPad user', 'UserShortName');
      id = `${userId.toUpperCase()}:${userShortName}`;
    }
    return { type: 'User', deviceKey, key: `${deviceKey}/user:${id}`, isUserChannel: true, udid, enrollmentId: null, userId, userShortName, userLongName };
  }
  if (enrollmentId) {
    const deviceKey = `ue:${enrollmentId}`;
    const enrollmentUserId = identifier(d, 'EnrollmentUserID');
    if (!enrollmentUserId) {
      return { type: 'UserEnrollmentDevice', deviceKey, key: deviceKey, isUserChannel: false, udid: null, enrollmentId, userId: null, userShortName: null, userLongName: null };
    }
    return {
      type: 'UserEnrollmentUser',
      deviceKey,
      key: `${deviceKey}/user:${enrollmentUserId}`,
      isUserChannel: true,
      udid: null,
      enrollmentId,
      userId: enrollmentUserId,
      userShortName,
      userLongName,
    };
  }
  throw new MessageError('the message names no device: UDID or EnrollmentID is required', 'UDID');
}

function topicOf(d: Record<string, PlistValue>, required: boolean): string | null {
  const topic = required ? str(d, 'Topic', { required: true, max: LIMITS.topic }) : str(d, 'Topic', { max: LIMITS.topic });
  if (topic === undefined) return null;
  // com.apple.mdm payloads require it (apple/device-management com.apple.mdm.yaml).
  if (!topic.startsWith('com.apple.mgmt.')) throw new MessageError("Topic must start with 'com.apple.mgmt.'", 'Topic');
  return topic;
}

function deviceFacts(d: Record<string, PlistValue>): DeviceFacts {
  const out: DeviceFacts = {};
  const keys: [keyof DeviceFacts, string][] = [
    ['deviceName', 'DeviceName'],
    ['model', 'Model'],
    ['modelName', 'ModelName'],
    ['productName', 'ProductName'],
    ['osVersion', 'OSVersion'],
    ['buildVersion', 'BuildVersion'],
    ['serialNumber', 'SerialNumber'],
    ['imei', 'IMEI'],
    ['meid', 'MEID'],
  ];
  for (const [prop, key] of keys) {
    const v = str(d, key, { max: 256 });
    if (v !== undefined && v.trim() !== '') out[prop] = v.trim();
  }
  return out;
}

/** A check-in message from its plist dictionary, or a MessageError naming what is wrong. */
export function parseCheckin(d: Record<string, PlistValue>): CheckinMessage {
  const type = str(d, 'MessageType', { required: true, max: 64 });
  if (!(CHECKIN_MESSAGE_TYPES as readonly string[]).includes(type)) throw new MessageError(`unknown MessageType '${type.slice(0, 64)}'`, 'MessageType');
  const channel = channelOf(d);
  switch (type as CheckinMessageType) {
    case 'Authenticate':
      if (channel.isUserChannel) throw new MessageError('Authenticate is a device channel message', 'UserID');
      return { type: 'Authenticate', channel, topic: topicOf(d, true)!, device: deviceFacts(d) };
    case 'TokenUpdate': {
      const token = data(d, 'Token', LIMITS.pushToken, true)!;
      const pushMagic = str(d, 'PushMagic', { required: true, max: LIMITS.pushMagic });
      return {
        type: 'TokenUpdate',
        channel,
        topic: topicOf(d, true)!,
        token,
        pushMagic,
        unlockToken: data(d, 'UnlockToken', LIMITS.unlockToken, false),
        awaitingConfiguration: bool(d, 'AwaitingConfiguration'),
        notOnConsole: bool(d, 'NotOnConsole'),
      };
    }
    case 'CheckOut':
      return { type: 'CheckOut', channel, topic: topicOf(d, false) };
    case 'UserAuthenticate':
      return { type: 'UserAuthenticate', channel, digestResponse: str(d, 'DigestResponse', { max: LIMITS.text }) ?? null };
    case 'DeclarativeManagement': {
      const endpoint = str(d, 'Endpoint', { required: true, max: LIMITS.endpoint });
      return { type: 'DeclarativeManagement', channel, endpoint, data: data(d, 'Data', LIMITS.declarativeData, false) };
    }
    case 'GetBootstrapToken':
      return { type: 'GetBootstrapToken', channel, awaitingConfiguration: bool(d, 'AwaitingConfiguration') };
    case 'SetBootstrapToken': {
      const token = data(d, 'BootstrapToken', LIMITS.bootstrapToken, false);
      // "If this field is missing or zero length, the bootstrap token should be removed."
      return { type: 'SetBootstrapToken', channel, bootstrapToken: token && token.length > 0 ? token : null, awaitingConfiguration: bool(d, 'AwaitingConfiguration') };
    }
    case 'GetToken':
      return { type: 'GetToken', channel, tokenServiceType: str(d, 'TokenServiceType', { required: true, max: 128 }) };
  }
}

function errorChain(d: Record<string, PlistValue>): ErrorChainItem[] | null {
  const v = d.ErrorChain;
  if (v === undefined) return null;
  if (!Array.isArray(v)) throw new MessageError('ErrorChain must be an array', 'ErrorChain');
  return v.slice(0, LIMITS.errorChain).map((item) => {
    if (!isDict(item)) throw new MessageError('ErrorChain items must be dictionaries', 'ErrorChain');
    const code = item.ErrorCode;
    const text = (k: string) => (typeof item[k] === 'string' ? (item[k] as string).slice(0, LIMITS.text) : null);
    return {
      errorCode: typeof code === 'number' && Number.isFinite(code) ? code : null,
      errorDomain: text('ErrorDomain'),
      localizedDescription: text('LocalizedDescription'),
      usEnglishDescription: text('USEnglishDescription'),
    };
  });
}

/** A command report (the device's PUT to ServerURL). */
export function parseReport(d: Record<string, PlistValue>): CommandReport {
  const channel = channelOf(d);
  const status = str(d, 'Status', { required: true, max: 64 });
  if (!(REPORT_STATUSES as readonly string[]).includes(status)) throw new MessageError(`unknown Status '${status.slice(0, 64)}'`, 'Status');
  const commandUuid = str(d, 'CommandUUID', { max: LIMITS.identifier }) ?? null;
  if (status !== 'Idle' && !commandUuid) throw new MessageError(`CommandUUID is required with Status ${status}`, 'CommandUUID');
  return {
    channel,
    status: status as ReportStatus,
    commandUuid: status === 'Idle' ? null : commandUuid,
    errorChain: errorChain(d),
    body: d,
  };
}

// ---- commands and results --------------------------------------------------------------------

/** The plist a device is sent: {Command: {RequestType, …keys}, CommandUUID}. */
export function commandDict(commandUuid: string, requestType: string, payload: Record<string, PlistValue> = {}): Record<string, PlistValue> {
  const { RequestType: _ignored, ...rest } = payload;
  return { Command: { RequestType: requestType, ...rest }, CommandUUID: commandUuid };
}

/** Plist values as JSON (data as base64, dates as ISO-8601), for the admin API. */
export function plistToJson(v: PlistValue): unknown {
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (Array.isArray(v)) return v.map(plistToJson);
  if (isDict(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plistToJson(x)]));
  return v;
}

export { isDict as isPlistDict };
