import net from 'node:net';
import { parseCertificate, readSignedData, PkiError, type CertificateInfo, type ReadSignedData } from '../../pki/index.js';

/**
 * Who sent a device message: the signer of its Mdm-Signature (CMS SignedData, detached, over the
 * body), or the TLS client certificate a trusted proxy forwards in a header. Pure apart from the
 * crypto; whether the certificate is ours is the IdentityVerifier's call.
 */

export class IdentityError extends Error {
  constructor(
    /** For logs: missingIdentity | badSignature | badClientCertificate. */
    readonly reason: 'missingIdentity' | 'badSignature' | 'badClientCertificate',
    message: string,
  ) {
    super(message);
    this.name = 'IdentityError';
  }
}

/** A base64 Mdm-Signature can't sensibly exceed this (a certificate chain and one signature). */
export const MAX_SIGNATURE_HEADER = 64 * 1024;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function signatureDer(header: string): Buffer {
  const compact = header.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length > MAX_SIGNATURE_HEADER || !BASE64.test(compact)) {
    throw new IdentityError('badSignature', 'Mdm-Signature is not base64');
  }
  return Buffer.from(compact, 'base64');
}

/** An Mdm-Signature read once: the signer it claims (before the body is read), then verified over the body. */
export interface MdmSignature {
  /** The certificate the signature names: nothing is verified yet, but a stranger can be refused early. */
  claimedSigner: CertificateInfo;
  /** The certificate that really signed `body` (the claimed one), or an IdentityError. */
  verify(body: Buffer): CertificateInfo;
}

const badSignature = (err: unknown): never => {
  if (err instanceof PkiError) throw new IdentityError('badSignature', `Mdm-Signature: ${err.message}`);
  throw err;
};

export function readMdmSignature(header: string): MdmSignature {
  const der = signatureDer(header);
  let read: ReadSignedData;
  try {
    read = readSignedData(der);
  } catch (err) {
    return badSignature(err);
  }
  return {
    claimedSigner: read.claimedSigner,
    verify(body) {
      try {
        return read.verify({ detachedContent: body }).signer;
      } catch (err) {
        return badSignature(err);
      }
    },
  };
}

/** The certificate that signed `body`, from the Mdm-Signature header. */
export function signerOfMdmSignature(header: string, body: Buffer): CertificateInfo {
  return readMdmSignature(header).verify(body);
}

/**
 * The client certificate a TLS-terminating proxy forwards: URL-encoded PEM (nginx
 * $ssl_client_escaped_cert) or RFC 9440 `:base64 DER:`.
 */
export function certificateFromHeader(value: string): CertificateInfo {
  const v = value.trim();
  try {
    if (v.startsWith(':') && v.endsWith(':') && v.length > 2) return parseCertificate(Buffer.from(v.slice(1, -1), 'base64'));
    return parseCertificate(decodeURIComponent(v));
  } catch (err) {
    if (err instanceof PkiError || err instanceof URIError) throw new IdentityError('badClientCertificate', 'the forwarded client certificate is unreadable');
    throw err;
  }
}

const NAMED_RANGES: Record<string, [string, number, 'ipv4' | 'ipv6'][]> = {
  loopback: [
    ['127.0.0.0', 8, 'ipv4'],
    ['::1', 128, 'ipv6'],
  ],
  linklocal: [
    ['169.254.0.0', 16, 'ipv4'],
    ['fe80::', 10, 'ipv6'],
  ],
  uniquelocal: [
    ['10.0.0.0', 8, 'ipv4'],
    ['172.16.0.0', 12, 'ipv4'],
    ['192.168.0.0', 16, 'ipv4'],
    ['fc00::', 7, 'ipv6'],
  ],
};

/**
 * Whether a peer address is a trusted proxy, from OPENENROLL_TRUST_PROXY (what Fastify's
 * trustProxy takes: true, or addresses, CIDR ranges and the names loopback / linklocal /
 * uniquelocal, comma separated). false trusts no one.
 */
export function trustedProxyMatcher(trustProxy: boolean | string): (address: string | undefined) => boolean {
  if (trustProxy === true) return () => true;
  if (trustProxy === false) return () => false;
  const list = new net.BlockList();
  for (const raw of trustProxy.split(',').map((s) => s.trim()).filter(Boolean)) {
    const named = NAMED_RANGES[raw.toLowerCase()];
    if (named) {
      for (const [addr, prefix, type] of named) list.addSubnet(addr, prefix, type);
      continue;
    }
    const [addr, prefix] = raw.split('/');
    const type = net.isIPv6(addr ?? '') ? 'ipv6' : net.isIPv4(addr ?? '') ? 'ipv4' : undefined;
    if (!type || !addr) continue;
    if (prefix === undefined) list.addAddress(addr, type);
    else if (/^\d{1,3}$/.test(prefix)) list.addSubnet(addr, Number(prefix), type);
  }
  return (address) => {
    if (!address) return false;
    const a = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
    const type = net.isIPv6(a) ? 'ipv6' : net.isIPv4(a) ? 'ipv4' : undefined;
    return type !== undefined && list.check(a, type);
  };
}
