import crypto from 'node:crypto';
import type { Clock } from '../../src/shared/time.js';
import { createCertificate, derToPem, generateRsaKey, pemToDer, privateKeyPem } from './crypto.js';

/**
 * The simulated "Apple iPhone Device CA": Apple signs each device's identity, and the device signs
 * its MachineInfo with that identity. Servers verify MachineInfo against this CA, so a test server
 * is given the simulator's CA as the one it trusts.
 */

export interface DeviceCa {
  certPem: string;
  keyPem: string;
}

const YEAR = 365 * 86_400_000;

export async function createDeviceCa(opts: { clock?: Clock; commonName?: string } = {}): Promise<DeviceCa> {
  const now = (opts.clock ?? { now: () => new Date() }).now();
  const key = await generateRsaKey(2048);
  const der = await createCertificate({
    subject: `CN=${opts.commonName ?? 'Apple iPhone Device CA'}, OU=Apple iPhone, O=Apple Inc., C=US`,
    key,
    notBefore: new Date(now.getTime() - 86_400_000),
    notAfter: new Date(now.getTime() + 20 * YEAR),
    isCa: true,
    keyUsage: 0x20 | 0x40 | 0x01, // keyCertSign | cRLSign | digitalSignature (x509.KeyUsageFlags values)
  });
  return { certPem: derToPem(der), keyPem: privateKeyPem(key) };
}

/** The device's Apple-issued identity, which signs MachineInfo. */
export async function issueDeviceIdentity(ca: DeviceCa, udid: string, now: Date, generateKey: (bits: number) => Promise<crypto.KeyObject> = generateRsaKey): Promise<{ certDer: Buffer; key: crypto.KeyObject }> {
  const key = await generateKey(2048);
  const certDer = await createCertificate({
    subject: `CN=${udid}, OU=Apple iPhone, O=Apple Inc., C=US`,
    key,
    issuer: { certDer: pemToDer(ca.certPem), key: crypto.createPrivateKey(ca.keyPem) },
    notBefore: new Date(now.getTime() - 86_400_000),
    notAfter: new Date(now.getTime() + 3 * YEAR),
    keyUsage: 0x01 | 0x04, // digitalSignature | keyEncipherment
  });
  return { certDer, key };
}
