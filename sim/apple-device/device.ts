import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Clock } from '../../src/shared/time.js';
import { runCommand, type CommandHost, type CommandResult, type InstalledProfile } from './commands.js';
import { derToPem, privateKeyPem, signCms } from './crypto.js';
import { issueDeviceIdentity, type DeviceCa } from './device-ca.js';
import { DeviceError } from './errors.js';
import { fillForm, metaRefresh, parseForms, profileLink, type Credentials } from './html.js';
import { CookieJar, fetchTransport, httpsTransport, mediaType, type HttpRequest, type HttpResponse, type Transport } from './http.js';
import { buildPlist, isDict, parsePlistDict, PlistFormatError, type PlistDict, type PlistValue } from './plist.js';
import { certificatePayloads, identityPayload, mdmPayload, readProfile, scepPayload, type MdmSettings, type ReadProfile } from './profile.js';
import { scepEnroll } from './scep.js';

export type ApplePlatform = 'iOS' | 'iPadOS' | 'macOS';

export interface AppleDeviceOptions {
  platform: ApplePlatform;
  serial: string;
  /** Default: a new one in the platform's form (iOS 00008xxx-…, macOS a UUID). */
  udid?: string;
  imei?: string;
  meid?: string;
  /** The hardware identifier, e.g. iPhone15,2 or MacBookPro18,3: Model, ProductName and MachineInfo PRODUCT. */
  model: string;
  /** ProductName of check-ins and DeviceInformation; default `model`. */
  productName?: string;
  /** ModelName, e.g. iPhone, iPad, MacBook Pro; default derived from `model`. */
  modelName?: string;
  osVersion: string;
  buildVersion: string;
  deviceName: string;
  /** The "Apple iPhone Device CA" that issues the identity signing MachineInfo (createDeviceCa()); ADE and Configurator need it. */
  deviceCa?: DeviceCa;
  /** PEM certificates the device trusts for TLS and profile signatures, besides the system roots. */
  trustAnchors?: readonly string[];
  /** A WHATWG fetch to use instead of the device's https client (then TLS trust is the caller's). */
  fetch?: typeof fetch;
  logger?: (line: string) => void;
  clock?: Clock;
  /**
   * Default true: profiles must be signed by a signer the device trusts (a real device would show
   * an unsigned or unverified profile and let the user go on; tests want the stricter answer).
   * A broken signature is refused either way.
   */
  strict?: boolean;
  /** MachineInfo LANGUAGE; default en. */
  language?: string;
  /** Talk to http:// servers too (development only; devices never do). */
  allowHttp?: boolean;
  /**
   * Where the device's new RSA keys come from (its Apple identity, each SCEP key); default a fresh
   * key every time. RSA key generation costs ~100 ms, so load generators hand in keys made ahead.
   */
  generateKey?: (bits: number) => Promise<crypto.KeyObject>;
}

export interface AdeEnrollOptions {
  /** Apple's configuration_web_url: the sign-in happens in Setup Assistant's web view. */
  configurationWebUrl?: string;
  /** For the legacy Setup Assistant prompt (401 Basic) or the web sign-in form. */
  credentials?: Credentials;
  /** The cloud configuration's await_device_configured: TokenUpdate says AwaitingConfiguration until DeviceConfigured. */
  awaitDeviceConfigured?: boolean;
  /** The cloud configuration's anchor_certs (base64 DER): trusted for the enrollment and MDM servers. */
  anchorCerts?: readonly string[];
  /** ADE devices are supervised (iOS 13+ / macOS 11+); default true. */
  supervised?: boolean;
  /** False for `profiles renew -type enrollment` on a Mac already set up: no Setup Assistant to hold. */
  setupAssistant?: boolean;
}

export interface EnrollmentResult {
  profile: InstalledProfile;
  mdm: MdmSettings;
  /** The SCEP-issued identity the device signs check-ins with. */
  identityCertPem: string;
  /** UDID, or the EnrollmentID of a User Enrollment. */
  enrollmentId: string;
}

export interface PolledCommand {
  commandUuid: string;
  requestType: string;
  status: CommandResult['Status'];
  result: PlistDict;
}

export interface PollResult {
  channel: 'device' | 'user';
  commands: PolledCommand[];
}

/** What the APNs simulator offers devices: pushes for a hex token. */
export interface PushSource {
  subscribe(tokenHex: string, listener: (notification: unknown) => void): (() => void) | { unsubscribe(): void } | void;
}

/** The cloud configuration a device gets from Apple at activation, as the ABM simulator holds it. */
export interface CloudConfigurationSource {
  device(serial: string): { profile_uuid?: string; profile_status?: string } | undefined;
  profile(uuid: string): { url?: string; configuration_web_url?: string; await_device_configured?: boolean; anchor_certs?: string[]; is_supervised?: boolean } | undefined;
  pushProfile?(serial: string): void;
}

interface UserChannel {
  userId: string;
  shortName: string;
  longName: string;
  token: Buffer;
  pushMagic: string;
}

const MAX_COMMANDS_PER_POLL = 200;
const MAX_WEB_STEPS = 12;
const CHECKIN_TYPE = 'application/x-apple-aspen-mdm-checkin';
const PROFILE_TYPE = 'application/x-apple-aspen-config';
/** Times a push-triggered poll is tried again when the server is unreachable. */
const WOKEN_POLL_RETRIES = 3;

function defaultUdid(platform: ApplePlatform): string {
  if (platform === 'macOS') return crypto.randomUUID().toUpperCase();
  const hex = crypto.randomBytes(12).toString('hex').toUpperCase();
  return `00008${hex.slice(0, 3)}-${hex.slice(3, 19)}`;
}

function defaultModelName(model: string, platform: ApplePlatform): string {
  const names: Array<[RegExp, string]> = [
    [/^iPhone/, 'iPhone'],
    [/^iPad/, 'iPad'],
    [/^iPod/, 'iPod touch'],
    [/^MacBookPro/, 'MacBook Pro'],
    [/^MacBookAir/, 'MacBook Air'],
    [/^MacBook/, 'MacBook'],
    [/^Macmini/, 'Mac mini'],
    [/^MacPro/, 'Mac Pro'],
    [/^iMac/, 'iMac'],
  ];
  return names.find(([re]) => re.test(model))?.[1] ?? (platform === 'macOS' ? 'Mac' : platform === 'iPadOS' ? 'iPad' : 'iPhone');
}

/** Stable made-up hardware addresses per serial. */
function macAddress(serial: string, kind: string): string {
  const h = crypto.createHash('sha256').update(`${kind}:${serial}`).digest();
  h[0] = (h[0]! & 0xfc) | 0x02; // locally administered, unicast
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/**
 * A simulated iPhone, iPad or Mac: ADE (MachineInfo, legacy 401 or the configuration web flow),
 * profile installation, SCEP, signed check-ins, the command loop, and APNs wake-ups. See README.md.
 */
export class AppleDevice {
  readonly platform: ApplePlatform;
  readonly serial: string;
  readonly udid: string;
  readonly imei: string | undefined;
  readonly meid: string | undefined;
  readonly model: string;
  readonly productName: string;
  readonly modelName: string;
  osVersion: string;
  buildVersion: string;
  deviceName: string;
  hostName: string | undefined;
  supervised = false;
  awaitingConfiguration = false;
  /** The 32-byte APNs token of the device channel (new on every enrollment). */
  pushToken: Buffer = crypto.randomBytes(32);
  pushMagic: string = crypto.randomUUID().toUpperCase();
  /** Every command the device answered, oldest first. */
  readonly commandLog: Array<PolledCommand & { channel: 'device' | 'user'; at: Date }> = [];
  /** Accounts AccountConfiguration asked for (macOS). */
  readonly configuredAccounts: PlistDict[] = [];
  /** Errors of push-triggered polls, after their retries (a manual poll throws instead). */
  readonly pushErrors: Error[] = [];
  /** Push-triggered polls tried again because the server couldn't be reached. */
  pollRetries = 0;

  private readonly opts: AppleDeviceOptions;
  private readonly clock: Clock;
  private readonly log: (line: string) => void;
  private trust: string[];
  private transport!: Transport & { close?(): void };
  private readonly installed = new Map<string, InstalledProfile>();
  private mdm: MdmSettings | undefined;
  private mdmProfileIdentifier: string | undefined;
  private identity: { certDer: Buffer; key: crypto.KeyObject } | undefined;
  private machineIdentity: Promise<{ certDer: Buffer; key: crypto.KeyObject }> | undefined;
  private userEnrollmentId: string | undefined;
  private user: UserChannel | undefined;
  private busy = 0;
  private readonly events = new EventEmitter();
  private readonly pollRunning = new Map<'device' | 'user', Promise<PollResult>>();
  private readonly pollNext = new Map<'device' | 'user', Promise<PollResult>>();
  private readonly unsubscribers: Array<() => void> = [];

  constructor(opts: AppleDeviceOptions) {
    if (!['iOS', 'iPadOS', 'macOS'].includes(opts.platform)) throw new Error(`platform must be iOS, iPadOS or macOS, not ${String(opts.platform)}`);
    for (const k of ['serial', 'model', 'osVersion', 'buildVersion', 'deviceName'] as const) {
      if (typeof opts[k] !== 'string' || opts[k].trim() === '') throw new Error(`${k} is required`);
    }
    this.opts = opts;
    this.platform = opts.platform;
    this.serial = opts.serial;
    this.udid = opts.udid ?? defaultUdid(opts.platform);
    this.imei = opts.platform === 'macOS' ? undefined : opts.imei;
    this.meid = opts.platform === 'macOS' ? undefined : opts.meid;
    this.model = opts.model;
    this.productName = opts.productName ?? opts.model;
    this.modelName = opts.modelName ?? defaultModelName(opts.model, opts.platform);
    this.osVersion = opts.osVersion;
    this.buildVersion = opts.buildVersion;
    this.deviceName = opts.deviceName;
    this.hostName = opts.platform === 'macOS' ? `${opts.deviceName.replace(/[^A-Za-z0-9-]/g, '-')}.local` : undefined;
    this.clock = opts.clock ?? { now: () => new Date() };
    this.log = opts.logger ?? (() => {});
    this.trust = [...(opts.trustAnchors ?? [])];
    this.events.setMaxListeners(0);
    this.rebuildTransport();
  }

  // ---- state -------------------------------------------------------------------------------

  get enrolled(): boolean {
    return this.mdm !== undefined;
  }

  /** UDID, or the EnrollmentID of a User Enrollment. */
  get enrollmentId(): string {
    return this.userEnrollmentId ?? this.udid;
  }

  get isUserEnrollment(): boolean {
    return this.userEnrollmentId !== undefined;
  }

  get mdmSettings(): MdmSettings | undefined {
    return this.mdm;
  }

  get identityCertificatePem(): string | undefined {
    return this.identity ? derToPem(this.identity.certDer) : undefined;
  }

  get identityKeyPem(): string | undefined {
    return this.identity ? privateKeyPem(this.identity.key) : undefined;
  }

  get pushTokenHex(): string {
    return this.pushToken.toString('hex');
  }

  get userChannel(): Readonly<UserChannel> | undefined {
    return this.user;
  }

  get profiles(): InstalledProfile[] {
    return [...this.installed.values()];
  }

  /** Trust another certificate (PEM) for TLS and profile signatures. */
  trustCertificate(pem: string): void {
    this.trust.push(pem);
    this.rebuildTransport();
  }

  /** Answer the next `n` commands NotNow, as a locked or busy device does. */
  busyFor(n: number): void {
    this.busy = Math.max(0, Math.floor(n));
  }

  close(): void {
    for (const u of this.unsubscribers.splice(0)) u();
    this.transport.close?.();
  }

  /** Hangs up the device's connections (as a phone does between polls); the next request connects again. */
  dropConnections(): void {
    this.rebuildTransport();
  }

  private rebuildTransport(): void {
    this.transport?.close?.();
    this.transport = this.opts.fetch ? fetchTransport(this.opts.fetch) : httpsTransport({ trustAnchors: this.trust, allowHttp: this.opts.allowHttp });
  }

  private send(req: HttpRequest): Promise<HttpResponse> {
    return this.transport(req);
  }

  // ---- MachineInfo ---------------------------------------------------------------------------

  /** The MachineInfo dictionary (apple/device-management other/machineinfo.yaml). */
  machineInfoDict(): PlistDict {
    const d: PlistDict = {
      UDID: this.udid,
      SERIAL: this.serial,
      PRODUCT: this.model,
      VERSION: this.buildVersion,
      OS_VERSION: this.osVersion,
      LANGUAGE: this.opts.language ?? 'en',
      MDM_CAN_REQUEST_SOFTWARE_UPDATE: true,
      SOFTWARE_UPDATE_DEVICE_ID: this.model,
    };
    if (this.imei) d.IMEI = this.imei;
    if (this.meid) d.MEID = this.meid;
    return d;
  }

  /** MachineInfo as the XML plist the device signs. */
  machineInfo(): string {
    return buildPlist(this.machineInfoDict());
  }

  /** CMS SignedData (DER) of MachineInfo, signed by the device's identity from the device CA. */
  async signedMachineInfo(opts: { digest?: 'sha1' | 'sha256' } = {}): Promise<Buffer> {
    const ca = this.opts.deviceCa;
    if (!ca) throw new DeviceError('state', 'This device has no device CA (deviceCa) to sign its MachineInfo with.');
    this.machineIdentity ??= issueDeviceIdentity(ca, this.udid, this.clock.now(), this.opts.generateKey);
    const id = await this.machineIdentity;
    return signCms(Buffer.from(this.machineInfo()), { certDer: id.certDer, key: id.key, digest: opts.digest ?? 'sha256', signingTime: this.clock.now() });
  }

  // ---- enrollment --------------------------------------------------------------------------

  /**
   * Automated Device Enrollment: POST the signed MachineInfo to the profile `url` (answering a
   * 401 Basic challenge with the credentials, as Setup Assistant's legacy prompt does), or run the
   * configuration_web_url sign-in; then install the profile, do SCEP, Authenticate and TokenUpdate.
   */
  async enrollAde(profileUrl: string, opts: AdeEnrollOptions = {}): Promise<EnrollmentResult> {
    const bytes = await this.fetchAdeProfile(profileUrl, opts);
    return this.enrollWithProfile(bytes, {
      strict: this.opts.strict ?? true,
      supervised: opts.supervised ?? true,
      awaitingConfiguration: (opts.awaitDeviceConfigured ?? false) && (opts.setupAssistant ?? true),
      ade: true,
    });
  }

  /** Only the first half of enrollAde: the profile as the server sent it (checked only for status and media type). */
  async fetchAdeProfile(profileUrl: string, opts: Pick<AdeEnrollOptions, 'configurationWebUrl' | 'credentials' | 'anchorCerts'> = {}): Promise<Buffer> {
    this.trustAnchorCerts(opts.anchorCerts);
    return opts.configurationWebUrl ? this.webFlow(opts.configurationWebUrl, opts.credentials) : this.postMachineInfo(profileUrl, opts.credentials);
  }

  /** ADE from the cloud configuration Apple holds for this serial (the ABM simulator). */
  async enrollAdeFromCloud(apple: CloudConfigurationSource, opts: Omit<AdeEnrollOptions, 'configurationWebUrl' | 'awaitDeviceConfigured' | 'anchorCerts'> = {}): Promise<EnrollmentResult> {
    const record = apple.device(this.serial);
    if (!record?.profile_uuid) throw new DeviceError('state', `Apple has no enrollment profile for ${this.serial}: the device finishes setup unmanaged.`);
    const profile = apple.profile(record.profile_uuid);
    if (!profile?.url) throw new DeviceError('state', `Apple's profile ${record.profile_uuid} has no url.`);
    apple.pushProfile?.(this.serial);
    this.log(`cloud configuration: ${profile.url}${profile.configuration_web_url ? ` (web: ${profile.configuration_web_url})` : ''}`);
    return this.enrollAde(profile.url, {
      ...opts,
      configurationWebUrl: profile.configuration_web_url,
      awaitDeviceConfigured: profile.await_device_configured ?? false,
      anchorCerts: profile.anchor_certs,
      supervised: opts.supervised ?? profile.is_supervised ?? true,
    });
  }

  /** Apple Configurator: the same MachineInfo exchange with the Configurator profile URL. */
  enrollWithConfigurator(profileUrl: string, opts: Pick<AdeEnrollOptions, 'credentials' | 'supervised'> = {}): Promise<EnrollmentResult> {
    return this.enrollAde(profileUrl, { ...opts, supervised: opts.supervised ?? true });
  }

  /**
   * A profile downloaded in Safari (user-initiated enrollment, direct enrollment file): GET it,
   * strict about the media type, then install it.
   */
  async downloadProfile(url: string, opts: { credentials?: Credentials; choices?: Record<string, string> } = {}): Promise<Buffer> {
    return this.webFlow(url, opts.credentials, { deviceInfo: false, choices: opts.choices });
  }

  /**
   * Installs a configuration profile (what the user does in Settings): verified as `strict` says;
   * a profile with a com.apple.mdm payload enrolls the device (SCEP, Authenticate, TokenUpdate).
   */
  async installProfile(bytes: Buffer, opts: { supervised?: boolean; awaitingConfiguration?: boolean } = {}): Promise<InstalledProfile | EnrollmentResult> {
    const strict = this.opts.strict ?? true;
    const read = this.read(bytes, strict);
    if (mdmPayload(read.dict)) {
      return this.enrollWithProfile(bytes, { strict, supervised: opts.supervised ?? false, awaitingConfiguration: opts.awaitingConfiguration ?? false, ade: false });
    }
    return this.store(read, false, false);
  }

  private trustAnchorCerts(anchors: readonly string[] | undefined): void {
    if (!anchors?.length) return;
    for (const b64 of anchors) this.trust.push(derToPem(Buffer.from(b64, 'base64')));
    this.rebuildTransport();
  }

  private async postMachineInfo(url: string, credentials: Credentials | undefined): Promise<Buffer> {
    const body = await this.signedMachineInfo();
    // Setup Assistant's cloud configuration daemon fetches the profile (ADE and Configurator alike).
    const headers = { 'content-type': 'application/pkcs7-signature', 'user-agent': 'CloudConfiguration/1.0' };
    let res = await this.send({ method: 'POST', url, headers, body });
    this.log(`POST ${url} (MachineInfo) → ${res.status}`);
    if (res.status === 401) {
      const challenge = res.headers['www-authenticate'] ?? '';
      if (!/^\s*basic\b/i.test(challenge)) throw new DeviceError('authenticationRequired', 'The enrollment server asked for authentication the device cannot give.', challenge || 'no WWW-Authenticate header');
      if (!credentials) throw new DeviceError('authenticationRequired', 'The enrollment server asks for a user name and password.', challenge, 401);
      const auth = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
      res = await this.send({ method: 'POST', url, headers: { ...headers, authorization: auth }, body });
      this.log(`POST ${url} (MachineInfo, Basic ${credentials.username}) → ${res.status}`);
      if (res.status === 401) throw new DeviceError('authenticationRequired', 'The user name or password is incorrect.', undefined, 401);
    }
    return this.profileFrom(res);
  }

  /** The profile of a response, or why the device refuses it (status, media type, Apple's error bodies). */
  private profileFrom(res: HttpResponse): Buffer {
    if (res.status !== 200) {
      let detail = pageText(res);
      const code = this.appleErrorCode(res);
      if (code) detail = code;
      if (code === 'com.apple.softwareupdate.required') throw new DeviceError('httpStatus', 'A software update is required before this device can enroll.', detail, res.status);
      throw new DeviceError('httpStatus', `The enrollment server answered ${res.status}.`, detail, res.status);
    }
    const type = mediaType(res.headers);
    if (type !== PROFILE_TYPE) throw new DeviceError('wrongContentType', `The enrollment server sent '${type || 'no content type'}', not ${PROFILE_TYPE}.`);
    if (res.body.length === 0) throw new DeviceError('malformedProfile', 'The profile is not valid.', 'the response is empty');
    return res.body;
  }

  /** `code` of Apple's JSON or plist error bodies (mdm/errors/*.yaml). */
  private appleErrorCode(res: HttpResponse): string | undefined {
    const text = res.body.toString('utf8');
    try {
      if (mediaType(res.headers).includes('json')) return (JSON.parse(text) as { code?: string }).code;
      if (text.includes('<plist')) return parsePlistDict(text).code as string | undefined;
    } catch {
      // not one of Apple's error bodies
    }
    return undefined;
  }

  /**
   * Setup Assistant's web view (or Safari): GET with x-apple-aspen-deviceinfo, follow redirects,
   * fill and submit sign-in forms, until the profile arrives, from the same host as the first URL.
   */
  private async webFlow(startUrl: string, credentials: Credentials | undefined, o: { deviceInfo?: boolean; choices?: Record<string, string> } = {}): Promise<Buffer> {
    const jar = new CookieJar();
    const host = new URL(startUrl).host;
    const first: Record<string, string> = {};
    if (o.deviceInfo !== false) first['x-apple-aspen-deviceinfo'] = (await this.signedMachineInfo()).toString('base64');
    let req: HttpRequest = { method: 'GET', url: startUrl, headers: first };
    for (let step = 0; step < MAX_WEB_STEPS; step++) {
      const cookie = jar.header(req.url);
      const res = await this.send({ ...req, headers: { accept: 'text/html,application/x-apple-aspen-config,*/*', 'user-agent': this.webUserAgent(), ...req.headers, ...(cookie ? { cookie } : {}) } });
      jar.store(req.url, res.headers);
      this.log(`${req.method} ${req.url} → ${res.status} ${mediaType(res.headers)}`);
      if ([301, 302, 303, 307, 308].includes(res.status) && res.headers.location) {
        const next = new URL(res.headers.location, req.url).href;
        req = res.status === 307 || res.status === 308 ? { ...req, url: next, headers: {} } : { method: 'GET', url: next, headers: {} };
        continue;
      }
      if (res.status === 200 && mediaType(res.headers) === 'text/html') {
        const html = res.body.toString('utf8');
        const forms = parseForms(html, req.url);
        const chosen = (f: (typeof forms)[number]) => f.fields.some((x) => o.choices?.[x.name] !== undefined && x.value === o.choices[x.name]);
        const form = forms.find((f) => f.fields.some((x) => x.type === 'password')) ?? forms.find(chosen) ?? forms[0];
        if (form) {
          if (form.fields.some((x) => x.type === 'password') && !credentials) throw new DeviceError('authenticationRequired', 'The enrollment page asks the user to sign in.', req.url);
          const body = fillForm(form, credentials, o.choices);
          req =
            form.method === 'POST'
              ? { method: 'POST', url: form.action, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() }
              : { method: 'GET', url: `${form.action.split('?')[0]}?${body.toString()}`, headers: {} };
          continue;
        }
        const next = metaRefresh(html, req.url) ?? profileLink(html, req.url, this.platform === 'macOS' ? 'macOS' : 'iOS');
        if (!next) throw new DeviceError('webFlow', 'The enrollment page has nothing to sign in with and no profile to download.', req.url);
        req = { method: 'GET', url: next, headers: {} };
        continue;
      }
      if (res.status === 401) {
        throw new DeviceError('authenticationRequired', credentials ? 'The sign-in was refused.' : 'The enrollment page asks the user to sign in.', pageText(res), 401);
      }
      const profile = this.profileFrom(res);
      if (new URL(req.url).host !== host) throw new DeviceError('webFlow', `The profile came from ${new URL(req.url).host}, not from ${host} where the sign-in started.`);
      return profile;
    }
    throw new DeviceError('webFlow', `The enrollment pages took more than ${MAX_WEB_STEPS} steps.`);
  }

  /** What the web view (or Safari) says it is. */
  private webUserAgent(): string {
    const v = this.osVersion.replace(/\./g, '_');
    if (this.platform === 'macOS') return `Mozilla/5.0 (Macintosh; Intel Mac OS X ${v}) AppleWebKit/605.1.15 (KHTML, like Gecko)`;
    return `Mozilla/5.0 (${this.platform === 'iPadOS' ? 'iPad' : 'iPhone'}; CPU ${this.platform === 'iPadOS' ? '' : 'iPhone '}OS ${v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148`;
  }

  private read(bytes: Buffer, strict: boolean, o: { requireSignature?: boolean } = {}): ReadProfile {
    return readProfile(bytes, { trustAnchors: this.trust, now: this.clock.now(), requireSignature: o.requireSignature ?? strict, requireVerified: strict });
  }

  private store(read: ReadProfile, managed: boolean, isMdmProfile: boolean): InstalledProfile {
    const d = read.dict;
    const existing = this.installed.get(d.PayloadIdentifier as string);
    if (existing?.isMdmProfile && !isMdmProfile) throw new DeviceError('state', 'A profile with the MDM profile’s identifier can’t replace it.');
    const p: InstalledProfile = {
      identifier: d.PayloadIdentifier as string,
      uuid: d.PayloadUUID as string,
      displayName: d.PayloadDisplayName as string | undefined,
      organization: d.PayloadOrganization as string | undefined,
      version: d.PayloadVersion as number,
      removalDisallowed: d.PayloadRemovalDisallowed === true,
      payloads: (d.PayloadContent as PlistValue[]).filter(isDict),
      signerCertificates: read.signerCertificates,
      verified: read.verified,
      managed,
      isMdmProfile,
      installedAt: this.clock.now(),
      dict: d,
    };
    this.installed.set(p.identifier, p);
    return p;
  }

  private async enrollWithProfile(bytes: Buffer, ctx: { strict: boolean; supervised: boolean; awaitingConfiguration: boolean; ade: boolean }): Promise<EnrollmentResult> {
    const read = this.read(bytes, ctx.strict);
    const mdm = mdmPayload(read.dict);
    if (!mdm) throw new DeviceError('malformedProfile', 'The profile is not valid.', 'an enrollment profile needs a com.apple.mdm payload');
    const identifier = read.dict.PayloadIdentifier as string;
    if (this.mdm && this.mdmProfileIdentifier !== identifier) {
      throw new DeviceError('state', 'This device is already managed by another MDM profile.', this.mdmProfileIdentifier);
    }
    const byod = mdm.enrollmentMode === 'BYOD';
    if (byod && ctx.ade) throw new DeviceError('malformedProfile', 'The profile is not valid.', 'Automated Device Enrollment cannot be a User Enrollment (EnrollmentMode BYOD)');
    const identity = identityPayload(read.dict, mdm.identityCertificateUuid);
    if (identity.PayloadType !== 'com.apple.security.scep') {
      throw new DeviceError('malformedProfile', 'The profile is not valid.', `the simulator only gets identities by SCEP, not ${String(identity.PayloadType)}`);
    }
    const scep = scepPayload(identity);
    // Certificates the profile installs are trusted from here on (the MDM server's CA, typically).
    for (const der of certificatePayloads(read.dict)) this.trust.push(derToPem(der));
    this.rebuildTransport();

    const issued = await scepEnroll(this.transport, scep, {
      vars: { ComputerName: this.deviceName, HardwareUUID: this.udid, SerialNumber: this.serial, UDID: this.udid },
      now: this.clock.now(),
      payloadIdentifier: String(identity.PayloadIdentifier),
      log: this.log,
      ...(this.opts.generateKey ? { generateKey: this.opts.generateKey } : {}),
    });

    const previous = { mdm: this.mdm, identity: this.identity, ue: this.userEnrollmentId, identifier: this.mdmProfileIdentifier, supervised: this.supervised, awaiting: this.awaitingConfiguration };
    this.mdm = mdm;
    this.identity = { certDer: issued.certDer, key: issued.key };
    this.mdmProfileIdentifier = identifier;
    this.userEnrollmentId = byod ? (this.userEnrollmentId ?? crypto.randomUUID().toUpperCase()) : undefined;
    this.supervised = ctx.supervised && !byod;
    this.awaitingConfiguration = ctx.awaitingConfiguration;
    this.pushToken = crypto.randomBytes(32);
    this.pushMagic = crypto.randomUUID().toUpperCase();
    try {
      await this.checkin('Authenticate', this.authenticateMessage());
      await this.checkin('TokenUpdate', this.tokenUpdateMessage());
    } catch (err) {
      // Enrollment failed: the device removes what it installed.
      Object.assign(this, { mdm: previous.mdm, identity: previous.identity, userEnrollmentId: previous.ue, mdmProfileIdentifier: previous.identifier, supervised: previous.supervised, awaitingConfiguration: previous.awaiting });
      throw err;
    }
    const profile = this.store(read, true, true);
    this.log(`enrolled: ${identifier} → ${mdm.serverUrl} as ${this.enrollmentId}`);
    return { profile, mdm, identityCertPem: derToPem(issued.certDer), enrollmentId: this.enrollmentId };
  }

  // ---- check-ins ---------------------------------------------------------------------------

  private ids(): PlistDict {
    return this.userEnrollmentId ? { EnrollmentID: this.userEnrollmentId } : { UDID: this.udid };
  }

  private authenticateMessage(): PlistDict {
    const m: PlistDict = {
      MessageType: 'Authenticate',
      Topic: this.mdm!.topic,
      ...this.ids(),
      DeviceName: this.deviceName,
      Model: this.model,
      ModelName: this.modelName,
      ProductName: this.productName,
      OSVersion: this.osVersion,
      BuildVersion: this.buildVersion,
    };
    if (!this.userEnrollmentId) {
      m.SerialNumber = this.serial;
      if (this.imei) m.IMEI = this.imei;
      if (this.meid) m.MEID = this.meid;
    }
    return m;
  }

  private tokenUpdateMessage(): PlistDict {
    const m: PlistDict = { MessageType: 'TokenUpdate', Topic: this.mdm!.topic, ...this.ids(), Token: this.pushToken, PushMagic: this.pushMagic };
    if (!this.userEnrollmentId) m.AwaitingConfiguration = this.awaitingConfiguration;
    // iOS escrows an unlock token with the MDM server on supervised devices.
    if (this.platform !== 'macOS' && this.supervised) m.UnlockToken = crypto.createHash('sha512').update(`unlock:${this.udid}`).digest();
    return m;
  }

  /** Signs a body: Mdm-Signature when the profile says SignMessage, else the TLS client certificate. */
  private signed(body: Buffer): Pick<HttpRequest, 'headers' | 'clientIdentity'> {
    const id = this.identity!;
    if (this.mdm!.signMessage) return { headers: { 'mdm-signature': signCms(body, { certDer: id.certDer, key: id.key, detached: true, signingTime: this.clock.now() }).toString('base64') } };
    return { headers: {}, clientIdentity: { certPem: derToPem(id.certDer), keyPem: privateKeyPem(id.key) } };
  }

  /** PUT a check-in message to CheckInURL; the answer's body (empty for most). */
  private async checkin(type: string, message: PlistDict): Promise<Buffer> {
    if (!this.mdm || !this.identity) throw new DeviceError('state', 'The device is not enrolled.');
    const body = Buffer.from(buildPlist(message));
    const s = this.signed(body);
    const res = await this.send({ method: 'PUT', url: this.mdm.checkInUrl, headers: { 'content-type': CHECKIN_TYPE, ...s.headers }, body, clientIdentity: s.clientIdentity });
    this.log(`check-in ${type}${message.UserID || message.EnrollmentUserID ? ' (user)' : ''} → ${res.status}`);
    if (res.status !== 200) throw new DeviceError('mdm', `The MDM server refused ${type} with ${res.status}.`, res.body.toString('utf8').slice(0, 300), res.status);
    return res.body;
  }

  /** Sends CheckOut (as when the user removes the management profile) and forgets the enrollment. */
  async checkOut(): Promise<void> {
    await this.checkin('CheckOut', { MessageType: 'CheckOut', Topic: this.mdm?.topic ?? '', ...this.ids() });
    this.forgetEnrollment();
  }

  /** The user removes the management profile: CheckOut only when the profile asked for it (CheckOutWhenRemoved). */
  async removeManagementProfile(): Promise<void> {
    if (!this.mdm) throw new DeviceError('state', 'The device is not enrolled.');
    if (this.mdm.checkOutWhenRemoved) await this.checkOut();
    else this.forgetEnrollment();
  }

  private forgetEnrollment(): void {
    for (const [id, p] of this.installed) if (p.managed) this.installed.delete(id);
    this.mdm = undefined;
    this.identity = undefined;
    this.mdmProfileIdentifier = undefined;
    this.userEnrollmentId = undefined;
    this.user = undefined;
    this.awaitingConfiguration = false;
    this.supervised = false;
    for (const u of this.unsubscribers.splice(0)) u();
  }

  /**
   * A user signs in on an enrolled Mac: the user channel's TokenUpdate (UserID, short and long
   * name; EnrollmentUserID under a User Enrollment).
   */
  async loginUser(user: { shortName: string; longName?: string; userId?: string }): Promise<void> {
    if (!this.mdm) throw new DeviceError('state', 'The device is not enrolled.');
    if (this.platform !== 'macOS' && !this.userEnrollmentId) throw new DeviceError('state', 'Only Macs (and User Enrollments) have a user channel.');
    this.user = {
      userId: user.userId ?? crypto.randomUUID().toUpperCase(),
      shortName: user.shortName,
      longName: user.longName ?? user.shortName,
      token: crypto.randomBytes(32),
      pushMagic: crypto.randomUUID().toUpperCase(),
    };
    await this.checkin('TokenUpdate', { MessageType: 'TokenUpdate', Topic: this.mdm.topic, ...this.ids(), ...this.userIds(), Token: this.user.token, PushMagic: this.user.pushMagic });
  }

  private userIds(): PlistDict {
    const u = this.user!;
    if (this.userEnrollmentId) return { EnrollmentUserID: u.userId, UserShortName: u.shortName, UserLongName: u.longName };
    return { UserID: u.userId, UserShortName: u.shortName, UserLongName: u.longName, NotOnConsole: false };
  }

  // ---- the command channel -----------------------------------------------------------------

  /** Polls the device channel: Idle, then each command's result, until the server has nothing more. */
  poll(): Promise<PollResult> {
    return this.serialised('device');
  }

  /** The same as poll(): what a device does when it checks in on its own. */
  checkIn(): Promise<PollResult> {
    return this.poll();
  }

  /** Polls the user channel (macOS). */
  pollUser(): Promise<PollResult> {
    if (!this.user) return Promise.reject(new DeviceError('state', 'No user is signed in.'));
    return this.serialised('user');
  }

  /**
   * One poll at a time per channel; pushes during a poll make one more poll run after it. A poll a
   * push started is tried again when the server can't be reached, as mdmd does: after about 1, 2
   * and 4 s; only then is it a failure (`pushErrors`, `pollError`).
   */
  private serialised(channel: 'device' | 'user', woken = false): Promise<PollResult> {
    const queued = this.pollNext.get(channel);
    if (queued) return queued;
    const running = this.pollRunning.get(channel);
    if (running) {
      const next = running
        .catch(() => undefined)
        .then(() => {
          this.pollNext.delete(channel);
          return this.serialised(channel, woken);
        });
      this.pollNext.set(channel, next);
      return next;
    }
    const p = this.retryingUnreachable(() => this.runPoll(channel), woken ? WOKEN_POLL_RETRIES : 0).finally(() => this.pollRunning.delete(channel));
    this.pollRunning.set(channel, p);
    p.then(
      (r) => this.events.emit('poll', r),
      (err: unknown) => this.events.emit('pollError', err),
    );
    return p;
  }

  private async retryingUnreachable<T>(attempt: () => Promise<T>, retries: number): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        if (i >= retries || !(err instanceof DeviceError) || err.code !== 'network') throw err;
        this.pollRetries++;
        this.log(`check-in failed (${err.message}); trying again`);
        await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** i * (0.5 + Math.random())));
      }
    }
  }

  /**
   * The device channel's Idle report as it would be sent now (ServerURL, headers with the
   * Mdm-Signature, body), for load generators that replay a device's polls without re-signing each.
   */
  idleReport(): { url: string; headers: Record<string, string>; body: Buffer } {
    if (!this.mdm || !this.identity) throw new DeviceError('state', 'The device is not enrolled.');
    const body = Buffer.from(buildPlist({ ...this.ids(), Status: 'Idle' }));
    const s = this.signed(body);
    if (s.clientIdentity) throw new DeviceError('state', 'This enrollment authenticates with a TLS client certificate, not Mdm-Signature.');
    return { url: this.mdm.serverUrl, headers: { 'content-type': 'application/x-apple-aspen-mdm', ...s.headers }, body };
  }

  /** PUT a status report (Idle or a command result) to ServerURL. */
  private async report(dict: PlistDict): Promise<HttpResponse> {
    const body = Buffer.from(buildPlist(dict));
    const s = this.signed(body);
    const res = await this.send({ method: 'PUT', url: this.mdm!.serverUrl, headers: { 'content-type': 'application/x-apple-aspen-mdm', ...s.headers }, body, clientIdentity: s.clientIdentity });
    if (res.status !== 200) throw new DeviceError('mdm', `The MDM server answered ${res.status} to ${String(dict.Status)}.`, res.body.toString('utf8').slice(0, 300), res.status);
    return res;
  }

  private async runPoll(channel: 'device' | 'user'): Promise<PollResult> {
    if (!this.mdm || !this.identity) throw new DeviceError('state', 'The device is not enrolled.');
    const ids = { ...this.ids(), ...(channel === 'user' ? this.userIds() : {}) };
    let res = await this.report({ ...ids, Status: 'Idle' });
    const commands: PolledCommand[] = [];
    while (res.body.toString('utf8').trim() !== '') {
      if (commands.length >= MAX_COMMANDS_PER_POLL) throw new DeviceError('mdm', `The MDM server sent more than ${MAX_COMMANDS_PER_POLL} commands in one session.`);
      const { uuid, requestType, result } = this.execute(res.body);
      const done: PolledCommand = { commandUuid: uuid, requestType, status: result.Status, result: result as PlistDict };
      commands.push(done);
      this.commandLog.push({ ...done, channel, at: this.clock.now() });
      this.log(`command ${requestType || '?'} ${uuid || '?'} → ${result.Status}`);
      res = await this.report({ ...ids, CommandUUID: uuid, ...(result as PlistDict), RequestType: requestType || undefined } as PlistDict);
      if (requestType === 'EraseDevice' && result.Status === 'Acknowledged') {
        // The device has reported; now it wipes itself and stops talking to the server.
        this.wipe();
        return { channel, commands };
      }
    }
    this.log(`poll (${channel}) done: ${commands.length} command(s)`);
    return { channel, commands };
  }

  private execute(body: Buffer): { uuid: string; requestType: string; result: CommandResult } {
    let dict: PlistDict;
    try {
      dict = parsePlistDict(body);
    } catch (err) {
      if (err instanceof PlistFormatError) return { uuid: '', requestType: '', result: { Status: 'CommandFormatError' } };
      throw err;
    }
    const uuid = typeof dict.CommandUUID === 'string' ? dict.CommandUUID : '';
    const command = dict.Command;
    const requestType = isDict(command) && typeof command.RequestType === 'string' ? command.RequestType : '';
    if (!uuid || !isDict(command) || !requestType) return { uuid, requestType, result: { Status: 'CommandFormatError' } };
    if (this.busy > 0) {
      this.busy--;
      return { uuid, requestType, result: { Status: 'NotNow' } };
    }
    return { uuid, requestType, result: runCommand(this.commandHost(), command) };
  }

  private commandHost(): CommandHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const device = this;
    return {
      platform: this.platform,
      supervised: this.supervised,
      userEnrollment: this.isUserEnrollment,
      accessRights: this.mdm?.accessRights ?? 0,
      get deviceName() {
        return device.deviceName;
      },
      set deviceName(v: string) {
        device.deviceName = v;
      },
      get hostName() {
        return device.hostName;
      },
      set hostName(v: string | undefined) {
        device.hostName = v;
      },
      get awaitingConfiguration() {
        return device.awaitingConfiguration;
      },
      facts: () => this.facts(),
      profiles: () => this.profiles,
      installManagedProfile: (payload) => {
        const read = this.read(payload, false, { requireSignature: false });
        if (mdmPayload(read.dict)) throw new DeviceError('state', 'A second MDM profile cannot be installed.');
        return this.store(read, true, false);
      },
      removeProfile: (identifier) => {
        this.installed.delete(identifier);
      },
      accountConfiguration: (cmd) => {
        this.configuredAccounts.push(cmd);
      },
      releaseFromSetup: () => {
        this.awaitingConfiguration = false;
        this.log('released from Setup Assistant (DeviceConfigured)');
      },
      erase: () => {},
      log: this.log,
    };
  }

  private wipe(): void {
    this.forgetEnrollment();
    this.installed.clear();
    this.deviceName = this.modelName;
    this.log('erased');
  }

  /** DeviceInformation answers, by query key (omitting what a User Enrollment keeps private). */
  facts(): Record<string, PlistValue | undefined> {
    const mac = this.platform === 'macOS';
    const ue = this.isUserEnrollment;
    const hidden = (v: PlistValue | undefined) => (ue ? undefined : v);
    return {
      UDID: hidden(this.udid),
      DeviceName: this.deviceName,
      OSVersion: this.osVersion,
      BuildVersion: this.buildVersion,
      ModelName: this.modelName,
      Model: this.model,
      ProductName: this.productName,
      SerialNumber: hidden(this.serial),
      IMEI: hidden(this.imei),
      MEID: hidden(this.meid),
      DeviceCapacity: 256,
      AvailableDeviceCapacity: 187.4,
      BatteryLevel: mac ? undefined : 0.87,
      HasBattery: true,
      IsSupervised: this.supervised,
      IsMultiUser: mac ? undefined : false,
      IsActivationLockEnabled: false,
      IsDeviceLocatorServiceEnabled: false,
      IsCloudBackupEnabled: mac ? undefined : false,
      IsMDMLostModeEnabled: mac ? undefined : false,
      AwaitingConfiguration: this.awaitingConfiguration,
      WiFiMAC: hidden(macAddress(this.serial, 'wifi')),
      BluetoothMAC: hidden(macAddress(this.serial, 'bt')),
      EthernetMAC: mac ? hidden(macAddress(this.serial, 'en')) : undefined,
      EASDeviceIdentifier: hidden(crypto.createHash('sha1').update(this.udid).digest('hex').slice(0, 32).toUpperCase()),
      LocalHostName: mac ? this.deviceName.replace(/[^A-Za-z0-9-]/g, '-') : undefined,
      HostName: mac ? this.hostName : undefined,
      IsAppleSilicon: mac ? !/^MacBookPro1[0-6]|^MacBookAir[0-9],|^iMac1/.test(this.model) : undefined,
      SystemIntegrityProtectionEnabled: mac ? true : undefined,
      SupplementalBuildVersion: this.buildVersion,
      TimeZone: 'Etc/UTC',
      SoftwareUpdateDeviceID: this.model,
    };
  }

  // ---- pushes --------------------------------------------------------------------------------

  /**
   * Wakes on pushes for this device's tokens from the APNs simulator: a notification whose `mdm`
   * is the channel's PushMagic makes the device poll that channel (others are ignored, as a device
   * drops a push with the wrong magic). Returns a function that stops listening.
   */
  listenForPushes(apns: PushSource): () => void {
    if (!this.mdm) throw new DeviceError('state', 'The device is not enrolled: it has no push token yet.');
    const subscribe = (token: Buffer, channel: 'device' | 'user', magic: () => string | undefined) => {
      const handle = apns.subscribe(token.toString('hex'), (n) => {
        const got = pushMagicOf(n);
        const topic = n && typeof n === 'object' && typeof (n as { topic?: unknown }).topic === 'string' ? (n as { topic: string }).topic : undefined;
        if (got === undefined || got !== magic() || (topic !== undefined && topic !== this.mdm?.topic)) {
          this.log(`push ignored: magic ${String(got)} / topic ${String(topic)} aren't ours`);
          return;
        }
        this.events.emit('push', channel);
        const p = channel === 'user' && !this.user ? Promise.reject(new DeviceError('state', 'No user is signed in.')) : this.serialised(channel, true);
        p.catch((err: unknown) => {
          this.pushErrors.push(err instanceof Error ? err : new Error(String(err)));
          this.log(`push-triggered poll failed: ${err instanceof Error ? err.message : String(err)}`);
        });
      });
      return typeof handle === 'function' ? handle : handle && 'unsubscribe' in handle ? () => handle.unsubscribe() : () => {};
    };
    const stops = [subscribe(this.pushToken, 'device', () => this.pushMagic)];
    if (this.user) stops.push(subscribe(this.user.token, 'user', () => this.user?.pushMagic));
    const stop = () => stops.splice(0).forEach((s) => s());
    this.unsubscribers.push(stop);
    return stop;
  }

  /** Resolves with the next poll that finishes (push-triggered or not); rejects when it fails or after `timeoutMs`. */
  waitForPoll(opts: { timeoutMs?: number; channel?: 'device' | 'user' } = {}): Promise<PollResult> {
    return new Promise<PollResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new DeviceError('state', `No poll finished within ${opts.timeoutMs ?? 10_000} ms.`));
      }, opts.timeoutMs ?? 10_000);
      const onPoll = (r: PollResult) => {
        if (opts.channel && r.channel !== opts.channel) return;
        cleanup();
        resolve(r);
      };
      const onError = (err: unknown) => {
        cleanup();
        reject(err instanceof Error ? err : new Error(String(err)));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.events.off('poll', onPoll);
        this.events.off('pollError', onError);
      };
      this.events.on('poll', onPoll);
      this.events.on('pollError', onError);
    });
  }
}

/** What a page or error body says, in short (HTML tags dropped), for error details. */
function pageText(res: HttpResponse): string {
  const text = res.body.toString('utf8');
  const plain = mediaType(res.headers) === 'text/html' ? (text.match(/<(h1|p)\b[^>]*>[\s\S]*?<\/\1>/gi) ?? []).map((x) => x.replace(/<[^>]+>/g, '')).join(' ') : text;
  return plain.replace(/\s+/g, ' ').trim().slice(0, 500);
}

/** The push magic of a notification: the APNs simulator's `pushMagic`, or the `mdm` key of a payload (object, JSON text, bytes, or wrapped). */
function pushMagicOf(n: unknown): string | undefined {
  let v: unknown = n;
  if (Buffer.isBuffer(v)) v = v.toString('utf8');
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.mdm === 'string') return o.mdm;
  if (typeof o.pushMagic === 'string') return o.pushMagic;
  for (const k of ['payload', 'body', 'json', 'aps']) if (o[k] !== undefined) return pushMagicOf(o[k]);
  return undefined;
}
