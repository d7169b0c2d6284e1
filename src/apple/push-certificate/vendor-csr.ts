import crypto from 'node:crypto';
import plist from 'plist';
import { certificateDer, parseCertificate } from '../../pki/certificates.js';
import { PkiError } from '../../pki/errors.js';
import { loadPrivateKey, loadPublicKey, samePublicKey } from '../../pki/keys.js';
import { derToPem, pemBlocks } from '../../pki/pem.js';

/**
 * The MDM vendor's signature over a customer's push CSR (Apple's "MDM Vendor CSR Signing",
 * micromdm pkg/crypto/mdmcertutil): an XML plist {PushCertRequestCSR: base64 DER CSR,
 * PushCertCertificateChain: vendor cert + WWDR + root PEMs, PushCertSignature: base64 RSA
 * PKCS#1 v1.5 SHA-256 signature of the DER CSR}, then base64 of the whole plist. The Apple Push
 * Certificates Portal accepts that file; a bare CSR is only accepted from Apple's own vendors.
 */

export interface MdmVendorCredentials {
  /** The vendor's "MDM CSR" certificate, PEM. */
  certificatePem: string;
  privateKey: crypto.KeyObject;
  /** Apple WWDR intermediate and Apple root, PEM, in order. */
  chainPems: string[];
}

/** Builds the credentials from file contents (PEM or DER certificate, PEM key, PEM chain), checking they fit. */
export function mdmVendorCredentials(certificate: string | Uint8Array, privateKey: string, chain: string | Uint8Array | undefined): MdmVendorCredentials {
  const cert = parseCertificate(certificate);
  const key = loadPrivateKey(privateKey);
  if (key.asymmetricKeyType !== 'rsa') throw new PkiError('unsupported', 'The MDM vendor key must be an RSA key.');
  if (!samePublicKey(loadPublicKey(cert.publicKeySpki), key)) throw new PkiError('keyMismatch', "The MDM vendor key doesn't match the MDM vendor certificate.");
  let chainPems: string[] = [];
  if (chain !== undefined) {
    const text = typeof chain === 'string' ? chain : Buffer.from(chain).toString('latin1');
    chainPems =
      typeof chain !== 'string' && chain[0] === 0x30
        ? [derToPem(certificateDer(chain), 'CERTIFICATE')]
        : pemBlocks(text)
            .filter((b) => b.label === 'CERTIFICATE')
            .map((b) => parseCertificate(b.der).pem);
    if (chainPems.length === 0) throw new PkiError('malformed', 'The MDM vendor chain file holds no certificate.');
  }
  return { certificatePem: cert.pem, privateKey: key, chainPems };
}

/** The base64 plist the admin uploads to the Apple Push Certificates Portal. */
export function vendorSignedPushCsr(csrDer: Uint8Array, vendor: MdmVendorCredentials): string {
  const signature = crypto.sign('sha256', csrDer, vendor.privateKey);
  const xml = plist.build({
    PushCertRequestCSR: Buffer.from(csrDer).toString('base64'),
    PushCertCertificateChain: [vendor.certificatePem, ...vendor.chainPems].join(''),
    PushCertSignature: signature.toString('base64'),
  });
  return Buffer.from(xml, 'utf8').toString('base64');
}
