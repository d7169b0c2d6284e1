import forge from 'node-forge';
import type { DepOAuthTokens } from '../../src/apple/ade/dep-api.js';

/**
 * The server token file ABM/ASM hands the admin ("Download Token"): the OAuth JSON wrapped in a small
 * MIME entity, encrypted as CMS EnvelopedData to the certificate the admin uploaded (RSA PKCS#1 v1.5
 * key transport, AES-256-CBC), then wrapped as an S/MIME `.p7m`. `openssl smime -decrypt` reads it.
 */

const CRLF = '\r\n';

/** Parses and checks the uploaded public key: a PEM X.509 certificate with an RSA key, as ABM accepts. */
export function parseRecipientCertificate(certPem: string): forge.pki.Certificate {
  if (typeof certPem !== 'string' || !/-----BEGIN CERTIFICATE-----/.test(certPem)) {
    throw new Error('the public key must be a PEM-encoded X.509 certificate');
  }
  let cert: forge.pki.Certificate;
  try {
    cert = forge.pki.certificateFromPem(certPem);
  } catch (err) {
    // forge refuses non-RSA keys here ("OID is not RSA").
    throw new Error(`the certificate can't be used: ${err instanceof Error ? err.message : String(err)}`);
  }
  const key = cert.publicKey as forge.pki.rsa.PublicKey;
  if (!key || typeof key.n?.bitLength !== 'function') throw new Error('the certificate must carry an RSA public key');
  if (key.n.bitLength() < 2048) throw new Error('the RSA key must be at least 2048 bits');
  return cert;
}

/** The decrypted content: a MIME entity whose body is the JSON between BEGIN/END MESSAGE markers. */
export function wrapTokenJson(tokens: DepOAuthTokens): string {
  return (
    `Content-Type: text/plain;charset=UTF-8${CRLF}` +
    `Content-Transfer-Encoding: 7bit${CRLF}${CRLF}` +
    `-----BEGIN MESSAGE-----\n${JSON.stringify(tokens)}\n-----END MESSAGE-----\n`
  );
}

export function buildServerTokenP7m(tokens: DepOAuthTokens, cert: forge.pki.Certificate): string {
  const p7 = forge.pkcs7.createEnvelopedData();
  p7.addRecipient(cert);
  p7.content = forge.util.createBuffer(wrapTokenJson(tokens), 'utf8');
  p7.encrypt(undefined, forge.pki.oids['aes256-CBC']);
  const der = forge.asn1.toDer(p7.toAsn1()).getBytes();
  const b64 = Buffer.from(der, 'binary').toString('base64').replace(/(.{76})/g, `$1${CRLF}`);
  return (
    `Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data${CRLF}` +
    `Content-Transfer-Encoding: base64${CRLF}` +
    `Content-Disposition: attachment; filename="smime.p7m"${CRLF}` +
    `Content-Description: S/MIME Encrypted Message${CRLF}${CRLF}` +
    `${b64.replace(/\r\n$/, '')}${CRLF}`
  );
}

/**
 * Decrypts a `.p7m` made by {@link buildServerTokenP7m} (or by ABM) back to the OAuth JSON. For tests
 * and tooling around the simulator; the product decrypts tokens with its own code.
 */
export function decryptServerToken(p7m: string, keyPem: string): DepOAuthTokens {
  const sep = /\r?\n\r?\n/.exec(p7m);
  if (!sep) throw new Error('not an S/MIME message: no blank line after the headers');
  const der = Buffer.from(p7m.slice(sep.index + sep[0].length).replace(/\s+/g, ''), 'base64').toString('binary');
  const msg = forge.pkcs7.messageFromAsn1(forge.asn1.fromDer(der)) as forge.pkcs7.PkcsEnvelopedData;
  const key = forge.pki.privateKeyFromPem(keyPem);
  const recipient = msg.recipients[0];
  if (!recipient) throw new Error('no recipient in the enveloped data');
  msg.decrypt(recipient, key);
  const inner = forge.util.decodeUtf8((msg.content as forge.util.ByteStringBuffer).getBytes());
  const m = /-----BEGIN MESSAGE-----\s*([\s\S]*?)\s*-----END MESSAGE-----/.exec(inner);
  if (!m) throw new Error('no BEGIN/END MESSAGE block in the decrypted token');
  return JSON.parse(m[1]!) as DepOAuthTokens;
}
