import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSelfSignedCertificate, issueCertificate, type CertificateInfo } from '../../src/pki/certificates.js';
import { generateRsaKeyPair } from '../../src/pki/keys.js';

/** Runs the real openssl CLI; throws with its stderr when it fails. */
export function openssl(args: readonly string[], input?: Uint8Array | string): Buffer {
  const res = spawnSync('openssl', args, { input, maxBuffer: 16 * 1024 * 1024 });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${res.status}): ${res.stderr.toString()}`);
  return res.stdout;
}

/** A temp dir whose files are written on demand. */
export function tempDir(prefix = 'openenroll-pki-'): { dir: string; file(name: string, content?: string | Uint8Array): string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    file(name, content) {
      const p = path.join(dir, name);
      if (content !== undefined) fs.writeFileSync(p, content);
      return p;
    },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TestIdentity {
  cert: CertificateInfo;
  keyPem: string;
}

/** A self-signed CA (stands in for Apple's push CA, or an MDM vendor's issuer). */
export async function testCa(name = 'OpenEnroll Test CA', opts: { notBefore?: Date; validityDays?: number } = {}): Promise<TestIdentity> {
  const { privateKeyPem } = await generateRsaKeyPair();
  const cert = await createSelfSignedCertificate({
    privateKeyPem,
    subject: { CN: name, O: 'OpenEnroll Tests' },
    validityDays: opts.validityDays ?? 3650,
    notBefore: opts.notBefore ?? new Date(Date.now() - 86_400_000),
    isCa: true,
    keyUsages: ['keyCertSign', 'cRLSign', 'digitalSignature'],
  });
  return { cert, keyPem: privateKeyPem };
}

/** A leaf key and certificate issued by the CA. */
export async function testLeaf(ca: TestIdentity, subject: Record<string, string>, opts: { notBefore?: Date; validityDays?: number; isCa?: boolean } = {}): Promise<TestIdentity> {
  const { privateKeyPem, publicKeyPem } = await generateRsaKeyPair();
  const cert = await issueCertificate({
    publicKey: publicKeyPem,
    issuerCertificatePem: ca.cert.pem,
    issuerPrivateKeyPem: ca.keyPem,
    subject,
    validityDays: opts.validityDays ?? 365,
    notBefore: opts.notBefore ?? new Date(Date.now() - 60_000),
    isCa: opts.isCa ?? false,
    keyUsages: opts.isCa ? ['keyCertSign', 'digitalSignature'] : ['digitalSignature', 'keyEncipherment'],
  });
  return { cert, keyPem: privateKeyPem };
}

/**
 * What the Apple Push Certificates Portal returns for a CSR: the CSR's key, subject
 * UID=com.apple.mgmt.External.<uuid>, CN=APSP:<uuid>, valid 365 days.
 */
export async function applePushCertificate(
  ca: TestIdentity,
  publicKey: string | Uint8Array,
  opts: { uuid?: string; notBefore?: Date; validityDays?: number; uid?: string } = {},
): Promise<{ cert: CertificateInfo; uuid: string; topic: string }> {
  const uuid = opts.uuid ?? crypto.randomUUID();
  const topic = opts.uid ?? `com.apple.mgmt.External.${uuid}`;
  const cert = await issueCertificate({
    publicKey,
    issuerCertificatePem: ca.cert.pem,
    issuerPrivateKeyPem: ca.keyPem,
    subject: [
      ['UID', topic],
      ['CN', `APSP:${uuid}`],
      ['OU', 'Test Team'],
      ['C', 'US'],
    ],
    validityDays: opts.validityDays ?? 365,
    notBefore: opts.notBefore ?? new Date(),
    keyUsages: ['digitalSignature', 'keyEncipherment'],
    extendedKeyUsages: ['clientAuth'],
  });
  return { cert, uuid, topic };
}
