import fs from 'node:fs';
import path from 'node:path';
import { createDeviceCa, type DeviceCa } from './device-ca.js';
import type { ApplePlatform } from './device.js';
import { DeviceError } from './errors.js';
import { createAppleDevice } from './index.js';

/** What `openenroll sim device …` and `openenroll sim device-ca …` run (src/cli/main.ts imports this lazily). */

const CA_FILE = 'device-ca.pem';
const KEY_FILE = 'device-ca-key.pem';

export async function createDeviceCaFiles(dir: string): Promise<{ certFile: string; keyFile: string }> {
  fs.mkdirSync(dir, { recursive: true });
  const certFile = path.join(dir, CA_FILE);
  const keyFile = path.join(dir, KEY_FILE);
  if (fs.existsSync(certFile) || fs.existsSync(keyFile)) throw new Error(`${dir} already holds a device CA; remove ${CA_FILE} and ${KEY_FILE} first`);
  const ca = await createDeviceCa();
  fs.writeFileSync(certFile, ca.certPem);
  fs.writeFileSync(keyFile, ca.keyPem, { mode: 0o600 });
  return { certFile, keyFile };
}

export function readDeviceCa(dir: string): DeviceCa {
  const certFile = path.join(dir, CA_FILE);
  const keyFile = path.join(dir, KEY_FILE);
  if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) throw new Error(`${dir} has no ${CA_FILE} and ${KEY_FILE}: run "openenroll sim device-ca create --out ${dir}" first`);
  return { certPem: fs.readFileSync(certFile, 'utf8'), keyPem: fs.readFileSync(keyFile, 'utf8') };
}

const DEFAULTS: Record<ApplePlatform, { model: string; osVersion: string; buildVersion: string; deviceName: string }> = {
  iOS: { model: 'iPhone15,2', osVersion: '18.1', buildVersion: '22B83', deviceName: 'iPhone' },
  iPadOS: { model: 'iPad13,16', osVersion: '18.1', buildVersion: '22B83', deviceName: 'iPad' },
  macOS: { model: 'Mac14,2', osVersion: '15.1', buildVersion: '24B83', deviceName: 'MacBook Air' },
};

export interface EnrollAdeCliOptions {
  url: string;
  webUrl?: string;
  serial: string;
  platform: ApplePlatform;
  model?: string;
  osVersion?: string;
  build?: string;
  deviceName?: string;
  udid?: string;
  imei?: string;
  deviceCaDir: string;
  trust: string[];
  user?: string;
  password?: string;
  awaitConfigured?: boolean;
  lenient?: boolean;
  /** Keep polling every n seconds after enrolling (no APNs from a shell); 0 polls once. */
  pollEvery: number;
}

/** Enrolls one simulated device through an ADE profile URL, printing each step; resolves when done (or never, with pollEvery). */
export async function enrollAdeFromCli(o: EnrollAdeCliOptions): Promise<void> {
  const d = DEFAULTS[o.platform];
  const started = Date.now();
  const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(2).padStart(6)}s] ${line}`);
  const device = createAppleDevice({
    platform: o.platform,
    serial: o.serial,
    model: o.model ?? d.model,
    osVersion: o.osVersion ?? d.osVersion,
    buildVersion: o.build ?? d.buildVersion,
    deviceName: o.deviceName ?? d.deviceName,
    ...(o.udid ? { udid: o.udid } : {}),
    ...(o.imei ? { imei: o.imei } : {}),
    deviceCa: readDeviceCa(o.deviceCaDir),
    trustAnchors: o.trust.map((f) => fs.readFileSync(f, 'utf8')),
    strict: !o.lenient,
    logger: log,
  });
  log(`${o.platform} ${device.model} serial ${device.serial} UDID ${device.udid}`);
  const credentials = o.user ? { username: o.user, password: o.password ?? process.env.OPENENROLL_SIM_PASSWORD ?? '' } : undefined;
  try {
    const r = await device.enrollAde(o.url, { configurationWebUrl: o.webUrl, credentials, awaitDeviceConfigured: o.awaitConfigured });
    log(`enrolled as ${r.enrollmentId}; profile "${r.profile.displayName ?? r.profile.identifier}" (${r.profile.verified ? 'verified' : 'not verified'}); topic ${r.mdm.topic}`);
    log(`push token ${device.pushTokenHex}, push magic ${device.pushMagic}`);
    for (;;) {
      const poll = await device.poll();
      for (const c of poll.commands) log(`  ${c.requestType} ${c.commandUuid}: ${c.status}`);
      if (!o.pollEvery) break;
      await new Promise((r) => setTimeout(r, o.pollEvery * 1000));
    }
    log(`device name "${device.deviceName}"${device.awaitingConfiguration ? ', still awaiting configuration' : ''}`);
  } catch (err) {
    if (err instanceof DeviceError) throw new Error(`the device refused (${err.code}): ${err.message}`, { cause: err });
    throw err;
  } finally {
    device.close();
  }
}
