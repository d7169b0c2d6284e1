/** The PKI toolkit: keys, certificates, CSRs, CMS EnvelopedData and SignedData, S/MIME input. */
export * from './errors.js';
export * from './pem.js';
export * from './keys.js';
export * from './names.js';
export * from './certificates.js';
export * from './enveloped.js';
export * from './signed.js';
export * from './smime.js';
export type { ContentCipher } from './oids.js';
