/**
 * Apple Configurator certificates ("Sync with computers: Allow Apple Configurator by
 * certificate"): Graph's managementCertificateWithThumbprint. Apple wants base64 DER in
 * supervising_host_certs; we accept base64 DER or PEM (also base64-wrapped PEM, which tools
 * produce by encoding a .cer file) and keep base64 DER with its SHA-1 thumbprint.
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { ManagementCertificate } from './model.js';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const PEM = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/;

export type CertificateResult = { ok: true; der: Buffer } | { ok: false; problem: string };

function strictBase64(s: string): Buffer | null {
  const compact = s.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64.test(compact)) return null;
  return Buffer.from(compact, 'base64');
}

/** The DER of one X.509 certificate given as base64 DER or PEM. */
export function parseCertificate(input: string): CertificateResult {
  let der: Buffer | null;
  const pem = PEM.exec(input);
  if (pem) {
    der = strictBase64(pem[1] ?? '');
  } else {
    der = strictBase64(input);
    const inner = der ? PEM.exec(der.toString('latin1')) : null;
    if (inner) der = strictBase64(inner[1] ?? '');
  }
  if (!der) return { ok: false, problem: 'must be a base64-encoded DER (or PEM) X.509 certificate' };
  try {
    const cert = new X509Certificate(der);
    // X509Certificate tolerates trailing bytes; Apple won't.
    if (!cert.raw.equals(der)) return { ok: false, problem: 'must hold exactly one X.509 certificate' };
    return { ok: true, der };
  } catch {
    return { ok: false, problem: 'is not a valid X.509 certificate' };
  }
}

/** SHA-1 of the DER, upper-case hex: the thumbprint Windows and Intune show. */
export function certificateThumbprint(der: Uint8Array): string {
  return createHash('sha1').update(der).digest('hex').toUpperCase();
}

/** A thumbprint as people write it ("ab:cd …", lower case) in canonical form. */
export function normalizeThumbprint(t: string): string {
  return t.replace(/[\s:]/g, '').toUpperCase();
}

export function toManagementCertificate(der: Buffer): ManagementCertificate {
  return { certificate: der.toString('base64'), thumbprint: certificateThumbprint(der) };
}

/** Whether a string is plain base64 of one DER certificate (what Apple's *_certs arrays hold). */
export function isBase64DerCertificate(value: string): boolean {
  const parsed = parseCertificate(value);
  return parsed.ok && !value.includes('-') && Buffer.from(value.replace(/\s+/g, ''), 'base64').equals(parsed.der);
}
