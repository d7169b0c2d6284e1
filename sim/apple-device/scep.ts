import crypto from 'node:crypto';
import {
  certificateFacts,
  createCertificate,
  createCsr,
  CryptoError,
  envelope,
  generateRsaKey,
  keyMatchesCertificate,
  OID,
  openEnvelope,
  signCms,
  verifyCms,
} from './crypto.js';
import { scepError } from './errors.js';
import { mediaType, type Transport } from './http.js';
import type { ScepSettings } from './profile.js';

/**
 * The client side of SCEP (RFC 8894) as iOS and macOS run it for a profile's SCEP payload:
 * GetCACaps, GetCACert, a new RSA key pair and a self-signed certificate for it, PKCSReq (a
 * SignedData over an EnvelopedData of the CSR, addressed to the CA or its RA), then CertRep: its
 * signature (by the CA/RA from GetCACert), nonces and transaction id, status, and the issued
 * certificate. Every failure is "The SCEP server returned an invalid response." with a detail.
 */

export const SCEP_OID = {
  messageType: '2.16.840.1.113733.1.9.2',
  pkiStatus: '2.16.840.1.113733.1.9.3',
  failInfo: '2.16.840.1.113733.1.9.4',
  senderNonce: '2.16.840.1.113733.1.9.5',
  recipientNonce: '2.16.840.1.113733.1.9.6',
  transactionID: '2.16.840.1.113733.1.9.7',
} as const;

const FAIL_INFO: Record<string, string> = { '0': 'badAlg', '1': 'badMessageCheck', '2': 'badRequest', '3': 'badTime', '4': 'badCertId' };

export interface ScepResult {
  certDer: Buffer;
  key: crypto.KeyObject;
  caCerts: Buffer[];
  capabilities: string[];
}

export interface ScepVariables {
  ComputerName: string;
  HardwareUUID: string;
  SerialNumber: string;
  UDID: string;
}

/** Apple's SCEP client appends the operation without looking for an existing query. */
const opUrl = (settings: ScepSettings, operation: string) =>
  `${settings.url}?operation=${operation}${settings.name !== undefined ? `&message=${encodeURIComponent(settings.name)}` : ''}`;

function substitute(v: string, vars: ScepVariables): string {
  return v.replace(/%(ComputerName|HardwareUUID|SerialNumber|UDID)%/g, (_, k: keyof ScepVariables) => vars[k]);
}

/** An RFC 4514 string from the payload's Subject (values escaped). */
function subjectString(subject: ScepSettings['subject'], vars: ScepVariables, fallbackCn: string): string {
  const esc = (s: string) => s.replace(/([,+"\\<>;=])/g, '\\$1').replace(/^([ #])/, '\\$1').replace(/ $/, '\\ ');
  const rdns = subject.map((rdn) => rdn.map(([k, v]) => `${k}=${esc(substitute(v, vars))}`).join('+'));
  if (!subject.some((rdn) => rdn.some(([k]) => k.toUpperCase() === 'CN' || k === '2.5.4.3'))) rdns.push(`CN=${esc(fallbackCn)}`);
  // Apple lists the subject from the top (C first); RFC 4514 strings start with the last RDN.
  return rdns.reverse().join(', ');
}

export async function scepEnroll(transport: Transport, settings: ScepSettings, ctx: { vars: ScepVariables; now: Date; payloadIdentifier: string; log: (m: string) => void; generateKey?: (bits: number) => Promise<crypto.KeyObject> }): Promise<ScepResult> {
  // GetCACaps: a failure only means "no capabilities" (RFC 8894 §3.5.2).
  let capabilities: string[] = [];
  const capsRes = await transport({ method: 'GET', url: opUrl(settings, 'GetCACaps') });
  if (capsRes.status === 200) capabilities = capsRes.body.toString('utf8').split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
  const has = (c: string) => capabilities.some((x) => x.toLowerCase() === c.toLowerCase());
  ctx.log(`SCEP GetCACaps → ${capsRes.status} [${capabilities.join(', ')}]`);

  const caRes = await transport({ method: 'GET', url: opUrl(settings, 'GetCACert') });
  if (caRes.status !== 200) throw scepError(`GetCACert answered ${caRes.status}`);
  const type = mediaType(caRes.headers);
  let caCerts: Buffer[];
  if (type === 'application/x-x509-ca-cert') {
    caCerts = [caRes.body];
  } else if (type === 'application/x-x509-ca-ra-cert') {
    try {
      caCerts = verifyCms(caRes.body, { what: 'GetCACert' }).certificates;
    } catch (err) {
      throw scepError(`GetCACert: ${err instanceof Error ? err.message : String(err)}`);
    }
  } else {
    throw scepError(`GetCACert answered Content-Type '${type}'`);
  }
  let facts: ReturnType<typeof certificateFacts>[];
  try {
    facts = caCerts.map(certificateFacts);
  } catch {
    throw scepError('GetCACert returned something that is not a certificate');
  }
  if (caCerts.length === 0) throw scepError('GetCACert returned no certificate');
  if (settings.caFingerprint) {
    const fp = settings.caFingerprint.toString('hex');
    if (!facts.some((f) => [f.md5, f.sha1, f.sha256].includes(fp))) throw scepError("no CA certificate matches the payload's CAFingerprint");
  }
  // RFC 8894 §2.2: with an RA, requests are encrypted to the RA (the certificate that isn't a CA).
  const raIndex = facts.findIndex((f) => !f.isCa);
  const recipient = caCerts[raIndex >= 0 ? raIndex : 0]!;
  ctx.log(`SCEP GetCACert → ${caCerts.length} certificate(s); recipient ${facts[raIndex >= 0 ? raIndex : 0]!.subject}`);

  const key = await (ctx.generateKey ?? generateRsaKey)(settings.keysize);
  const subject = subjectString(settings.subject, ctx.vars, ctx.payloadIdentifier);
  const san = settings.subjectAltName;
  const csr = await createCsr({
    subject,
    key,
    challengePassword: settings.challenge,
    keyUsage: settings.keyUsage || undefined,
    subjectAltNames: san
      ? [
          ...(san.rfc822Name ? [{ type: 'email' as const, value: san.rfc822Name }] : []),
          ...(san.dNSName ? [{ type: 'dns' as const, value: san.dNSName }] : []),
          ...(san.uniformResourceIdentifier ? [{ type: 'url' as const, value: san.uniformResourceIdentifier }] : []),
          ...(san.ntPrincipalName ? [{ type: 'upn' as const, value: san.ntPrincipalName }] : []),
        ]
      : undefined,
  });
  // The signer of the request: a self-signed certificate for the new key (RFC 8894 §2.3).
  const selfSigned = await createCertificate({ subject, key, notBefore: new Date(ctx.now.getTime() - 3_600_000), notAfter: new Date(ctx.now.getTime() + 7 * 86_400_000) });
  const aes = has('AES') || has('SCEPStandard');
  const sha256 = has('SHA-256') || has('SCEPStandard');
  const senderNonce = crypto.randomBytes(16);
  const transactionId = crypto.createHash(sha256 ? 'sha256' : 'sha1').update(crypto.createPublicKey(key).export({ type: 'spki', format: 'der' })).digest('hex').toUpperCase();
  const pkcsReq = signCms(envelope(csr, recipient, aes ? OID.aes128cbc : OID.desEde3cbc), {
    certDer: selfSigned,
    key,
    digest: sha256 ? 'sha256' : 'sha1',
    signingTime: ctx.now,
    attributes: {
      [SCEP_OID.messageType]: { printable: '19' },
      [SCEP_OID.transactionID]: { printable: transactionId },
      [SCEP_OID.senderNonce]: { octets: senderNonce },
    },
  });

  const post = has('POSTPKIOperation') || has('SCEPStandard');
  const res = post
    ? await transport({ method: 'POST', url: opUrl({ ...settings, name: undefined }, 'PKIOperation'), headers: { 'content-type': 'application/x-pki-message' }, body: pkcsReq })
    : await transport({ method: 'GET', url: `${opUrl({ ...settings, name: undefined }, 'PKIOperation')}&message=${encodeURIComponent(pkcsReq.toString('base64'))}` });
  ctx.log(`SCEP PKIOperation (${post ? 'POST' : 'GET'}) → ${res.status}`);
  if (res.status !== 200) throw scepError(`PKIOperation answered ${res.status}`);
  if (mediaType(res.headers) !== 'application/x-pki-message') throw scepError(`PKIOperation answered Content-Type '${mediaType(res.headers)}'`);

  let rep: ReturnType<typeof verifyCms>;
  try {
    rep = verifyCms(res.body, { what: 'CertRep' });
  } catch (err) {
    throw scepError(err instanceof CryptoError ? err.message : String(err));
  }
  if (!rep.signerDer || !caCerts.some((c) => c.equals(rep.signerDer!))) throw scepError('CertRep is not signed by the CA or RA of GetCACert');
  const attr = (oid: string) => rep.attributes.get(oid);
  if (attr(SCEP_OID.messageType) !== '3') throw scepError(`CertRep has messageType ${String(attr(SCEP_OID.messageType))}, not 3`);
  if (attr(SCEP_OID.transactionID) !== transactionId) throw scepError('CertRep has another transactionID');
  const recipientNonce = attr(SCEP_OID.recipientNonce);
  if (!Buffer.isBuffer(recipientNonce) || !recipientNonce.equals(senderNonce)) throw scepError("CertRep's recipientNonce isn't our senderNonce");
  const status = attr(SCEP_OID.pkiStatus);
  if (status === '2') {
    const fail = String(attr(SCEP_OID.failInfo) ?? '?');
    throw scepError(`the request failed: failInfo ${FAIL_INFO[fail] ?? fail}`);
  }
  if (status === '3') throw scepError('the request is pending manual approval');
  if (status !== '0') throw scepError(`CertRep has pkiStatus ${String(status)}`);

  let issued: Buffer | undefined;
  try {
    const inner = openEnvelope(rep.content, { certDer: selfSigned, key }, 'CertRep content');
    issued = verifyCms(inner, { what: 'CertRep certificates' }).certificates.find((c) => keyMatchesCertificate(key, c));
  } catch (err) {
    throw scepError(err instanceof CryptoError ? err.message : String(err));
  }
  if (!issued) throw scepError('CertRep holds no certificate for our key');
  const f = certificateFacts(issued);
  if (ctx.now < f.notBefore || ctx.now > f.notAfter) throw scepError(`the issued certificate is not valid now (${f.notBefore.toISOString()} – ${f.notAfter.toISOString()})`);
  ctx.log(`SCEP issued ${f.subject} by ${f.issuer}, serial ${f.serialNumber}`);
  return { certDer: issued, key, caCerts, capabilities };
}
