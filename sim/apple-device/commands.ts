import { DeviceError, errorChainItem, type ErrorChainItem } from './errors.js';
import { isDict, type PlistDict, type PlistValue } from './plist.js';

/**
 * What the device does with each MDM command, as iOS/macOS answer them: the result dictionary
 * (Status plus the command's response keys). The device adds UDID/EnrollmentID and CommandUUID.
 *
 * Choices where Apple documents no code: unknown RequestType → Error 12021 "Unknown command"
 * (MCMDMErrorDomain, as iOS answers); a command missing a required key or with a key of the wrong
 * type → CommandFormatError; missing access rights → Error 12025; profile errors use
 * MCProfileErrorDomain 1000 (malformed), 1001 (not installed), 1004 (can't be removed), 1005
 * (signature), 1006 (a second MDM profile).
 */

export interface InstalledProfile {
  identifier: string;
  uuid: string;
  displayName: string | undefined;
  organization: string | undefined;
  version: number;
  removalDisallowed: boolean;
  payloads: PlistDict[];
  signerCertificates: Buffer[];
  verified: boolean;
  /** Installed by the MDM server (InstallProfile) or the enrollment itself. */
  managed: boolean;
  isMdmProfile: boolean;
  installedAt: Date;
  dict: PlistDict;
}

/** What the handlers may read and change on the device. */
export interface CommandHost {
  platform: 'iOS' | 'iPadOS' | 'macOS';
  supervised: boolean;
  userEnrollment: boolean;
  accessRights: number;
  deviceName: string;
  hostName: string | undefined;
  awaitingConfiguration: boolean;
  /** Device facts for DeviceInformation, by query key. */
  facts(): Record<string, PlistValue | undefined>;
  profiles(): InstalledProfile[];
  installManagedProfile(payload: Buffer): InstalledProfile;
  removeProfile(identifier: string): void;
  accountConfiguration(cmd: PlistDict): void;
  releaseFromSetup(): void;
  erase(): void;
  log(line: string): void;
}

export type CommandStatus = 'Acknowledged' | 'Error' | 'CommandFormatError' | 'NotNow';
export type CommandResult = { Status: CommandStatus; ErrorChain?: ErrorChainItem[] } & Record<string, PlistValue | ErrorChainItem[] | undefined>;

const ok = (extra: Record<string, PlistValue> = {}): CommandResult => ({ Status: 'Acknowledged', ...extra });
const error = (code: number, domain: string, text: string): CommandResult => ({ Status: 'Error', ErrorChain: [errorChainItem(code, domain, text)] });
const formatError = (): CommandResult => ({ Status: 'CommandFormatError' });

/** Access rights (com.apple.mdm AccessRights bits) each command needs. */
const RIGHTS: Record<string, number> = {
  ProfileList: 1,
  InstallProfile: 2,
  RemoveProfile: 2,
  DeviceLock: 4,
  EraseDevice: 8,
  Settings: 2048,
};

type Handler = (host: CommandHost, cmd: PlistDict) => CommandResult;

const HANDLERS: Record<string, Handler> = {
  DeviceInformation(host, cmd) {
    const queries = cmd.Queries;
    if (!Array.isArray(queries) || !queries.every((q) => typeof q === 'string')) return formatError();
    const facts = host.facts();
    const QueryResponses: PlistDict = {};
    for (const q of queries as string[]) {
      const v = facts[q];
      if (v !== undefined) QueryResponses[q] = v;
    }
    return ok({ QueryResponses });
  },

  ProfileList(host, cmd) {
    if (cmd.ManagedOnly !== undefined && typeof cmd.ManagedOnly !== 'boolean') return formatError();
    const managedOnly = cmd.ManagedOnly === true || host.userEnrollment;
    const ProfileList = host
      .profiles()
      .filter((p) => !managedOnly || p.managed)
      .map((p) => {
        const item: PlistDict = {
          PayloadIdentifier: p.identifier,
          PayloadUUID: p.uuid,
          PayloadVersion: p.version,
          PayloadRemovalDisallowed: p.removalDisallowed,
          HasRemovalPasscode: false,
          IsEncrypted: false,
          PayloadContent: p.payloads.map((x) => {
            const c: PlistDict = { PayloadType: x.PayloadType!, PayloadIdentifier: x.PayloadIdentifier!, PayloadUUID: x.PayloadUUID!, PayloadVersion: x.PayloadVersion! };
            if (typeof x.PayloadDisplayName === 'string') c.PayloadDisplayName = x.PayloadDisplayName;
            return c;
          }),
        };
        if (p.displayName !== undefined) item.PayloadDisplayName = p.displayName;
        if (p.organization !== undefined) item.PayloadOrganization = p.organization;
        if (p.signerCertificates.length) item.SignerCertificates = p.signerCertificates;
        if (host.platform === 'macOS' && !host.supervised) item.IsManaged = p.managed;
        return item;
      });
    return ok({ ProfileList });
  },

  InstallProfile(host, cmd) {
    if (!Buffer.isBuffer(cmd.Payload) || cmd.Payload.length === 0) return formatError();
    try {
      const p = host.installManagedProfile(cmd.Payload);
      host.log(`installed profile ${p.identifier}`);
      return ok();
    } catch (err) {
      if (err instanceof DeviceError) {
        const code = err.code === 'badSignature' ? 1005 : err.code === 'state' ? 1006 : 1000;
        return error(code, 'MCProfileErrorDomain', err.message);
      }
      throw err;
    }
  },

  RemoveProfile(host, cmd) {
    if (typeof cmd.Identifier !== 'string' || cmd.Identifier === '') return formatError();
    const p = host.profiles().find((x) => x.identifier === cmd.Identifier);
    if (!p) return error(1001, 'MCProfileErrorDomain', `The profile “${cmd.Identifier}” is not installed.`);
    if (!p.managed || p.isMdmProfile) return error(1004, 'MCProfileErrorDomain', `The profile “${cmd.Identifier}” can't be removed by the MDM server.`);
    host.removeProfile(p.identifier);
    return ok();
  },

  Settings(host, cmd) {
    const items = cmd.Settings;
    if (!Array.isArray(items) || !items.every((i) => isDict(i) && typeof i.Item === 'string')) return formatError();
    const Settings = (items as PlistDict[]).map((item): PlistDict => {
      const denied = (text: string) => ({ Status: 'Error', ErrorChain: [errorChainItem(12078, 'MCMDMErrorDomain', text)] }) as unknown as PlistDict;
      switch (item.Item) {
        case 'DeviceName': {
          if (typeof item.DeviceName !== 'string' || item.DeviceName.trim() === '') return denied('DeviceName is missing.');
          if (host.userEnrollment) return denied('The device name can’t be set on a User Enrollment.');
          if (host.platform !== 'macOS' && !host.supervised) return denied('The device name can only be set on supervised devices.');
          host.log(`renamed "${host.deviceName}" → "${item.DeviceName}"`);
          host.deviceName = item.DeviceName;
          return { Status: 'Acknowledged' };
        }
        case 'HostName':
          if (host.platform !== 'macOS') return denied('HostName is only available on macOS.');
          if (typeof item.HostName !== 'string') return denied('HostName is missing.');
          host.hostName = item.HostName;
          return { Status: 'Acknowledged' };
        case 'OrganizationInfo':
        case 'MDMOptions':
        case 'TimeZone':
          return { Status: 'Acknowledged' };
        default:
          return denied(`The setting ${String(item.Item)} is not supported.`);
      }
    });
    return ok({ Settings });
  },

  DeviceConfigured(host) {
    if (!host.awaitingConfiguration) return error(12070, 'MCMDMErrorDomain', 'The device is not awaiting configuration.');
    host.releaseFromSetup();
    return ok();
  },

  AccountConfiguration(host, cmd) {
    if (host.platform !== 'macOS') return error(12021, 'MCMDMErrorDomain', 'Unknown command: AccountConfiguration');
    if (!host.awaitingConfiguration) return error(12070, 'MCMDMErrorDomain', 'The device is not awaiting configuration.');
    const accounts = cmd.AutoSetupAdminAccounts;
    if (accounts !== undefined && (!Array.isArray(accounts) || !accounts.every((a) => isDict(a) && typeof a.shortName === 'string'))) return formatError();
    if ((cmd.SkipPrimarySetupAccountCreation === true || cmd.SetPrimarySetupAccountAsRegularUser === true) && !(Array.isArray(accounts) && accounts.length > 0)) return formatError();
    host.accountConfiguration(cmd);
    return ok();
  },

  DeviceLock: () => ok(),
  RestartDevice: (host) => (host.platform === 'macOS' || host.supervised ? ok() : error(12021, 'MCMDMErrorDomain', 'Unknown command: RestartDevice')),
  ShutDownDevice: (host) => (host.platform === 'macOS' || host.supervised ? ok() : error(12021, 'MCMDMErrorDomain', 'Unknown command: ShutDownDevice')),
  EraseDevice(host) {
    if (host.userEnrollment) return error(12021, 'MCMDMErrorDomain', 'Unknown command: EraseDevice');
    host.erase();
    return ok();
  },
};

/** Runs one command (its Command dictionary). */
export function runCommand(host: CommandHost, command: PlistDict): CommandResult {
  const type = command.RequestType;
  if (typeof type !== 'string' || type === '') return formatError();
  const handler = HANDLERS[type];
  if (!handler) return error(12021, 'MCMDMErrorDomain', `Unknown command: ${type}`);
  // User Enrollment keeps the device's own commands away from the organisation.
  if (host.userEnrollment && ['EraseDevice', 'DeviceLock', 'DeviceConfigured', 'AccountConfiguration'].includes(type)) {
    return error(12021, 'MCMDMErrorDomain', `Unknown command: ${type}`);
  }
  const needs = RIGHTS[type] ?? 0;
  if (needs && !host.userEnrollment && (host.accessRights & needs) !== needs) {
    return error(12025, 'MCMDMErrorDomain', `The MDM server does not have the access rights for ${type}.`);
  }
  return handler(host, command);
}

export const SUPPORTED_COMMANDS = Object.keys(HANDLERS);
