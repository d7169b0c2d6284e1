import crypto from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, expect, it } from 'vitest';
import { anchorsFromPem, MACHINE_INFO_LIMITS, MachineInfoError, verifyMachineInfo, verifyMachineInfoHeader, type MachineInfoAnchors } from '../../src/apple/enrollment/machine-info.js';
import { certificateFromHeader, IdentityError, MAX_SIGNATURE_HEADER, signerOfMdmSignature } from '../../src/apple/mdm/identity.js';
import { csrChallengePassword, MalformedPkiMessage, readPkiMessage } from '../../src/apple/scep/pki-message.js';
import { createCsr, parseCertificate, parseCsr } from '../../src/pki/certificates.js';
import { decryptEnvelopedData, encryptEnvelopedData } from '../../src/pki/enveloped.js';
import { PkiError } from '../../src/pki/errors.js';
import { createSignedData, signedDataFields, signedDataFieldsFromDer, verifySignedData, type SignedDataFields } from '../../src/pki/signed.js';
import { MAX_CMS_BYTES, readCmsInput } from '../../src/pki/smime.js';
import { buildPlist } from '../../src/shared/plist.js';
import { clientKey, forgeCsr, pkiMessage, type ClientKey } from '../apple/scep-support.js';
import { testCa, testLeaf, type TestIdentity } from '../pki/fixtures.js';
import { heapBounded, mutate, mutations, pureDescribe, refuses, typedOnly, typedOnlyAsync } from './support.js';

/**
 * The DER/BER readers devices reach: CMS SignedData (MachineInfo, Mdm-Signature), SCEP pkiMessages
 * (SignedData over EnvelopedData over a CSR), forwarded client certificates, S/MIME input. Random
 * and mutated messages, size limits, and ASN.1 nested thousands deep.
 */

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** `depth` SEQUENCEs (or another constructed tag) inside one another, definite lengths. */
function nestedDefinite(depth: number, tag = 0x30, inner: Buffer = Buffer.from([0x05, 0x00])): Buffer {
  let b = inner;
  for (let i = 0; i < depth; i++) b = Buffer.concat([Buffer.from([tag]), derLength(b.length), b]);
  return b;
}

/** The same with indefinite (BER) lengths: 30 80 … 00 00. */
function nestedIndefinite(depth: number, tag = 0x30): Buffer {
  return Buffer.concat([Buffer.from(Array.from({ length: depth }, () => [tag, 0x80]).flat()), Buffer.from([0x05, 0x00]), Buffer.alloc(depth * 2)]);
}

/** A ContentInfo claiming SignedData whose content is a deep nest: the parser must reach the nest. */
function contentInfoAround(inner: Buffer): Buffer {
  const oid = Buffer.from('06092a864886f70d010702', 'hex');
  const explicit = Buffer.concat([Buffer.from([0xa0]), derLength(inner.length), inner]);
  const body = Buffer.concat([oid, explicit]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

const PKI_TYPES = [PkiError];
const UDID = '00008110-000A1B2C3D4E5F60';

/** Whether two SubjectPublicKeyInfo encodings hold the same key. */
const sameKey = (a: Buffer, b: Buffer) =>
  crypto.createPublicKey({ key: a, format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' }).equals(crypto.createPublicKey({ key: b, format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' }));

pureDescribe('CMS, SCEP and certificate parsing under fuzzing', () => {
  let deviceCa: TestIdentity;
  let device: TestIdentity;
  let anchors: MachineInfoAnchors;
  let machineInfo: Buffer;
  let scepKey: ClientKey;
  let scepCa: TestIdentity;
  let pkiMsg: Buffer;
  let csr: Buffer;
  let envelope: Buffer;
  beforeAll(async () => {
    deviceCa = await testCa('Fuzz Device CA');
    device = await testLeaf(deviceCa, { CN: UDID });
    anchors = anchorsFromPem(deviceCa.cert.pem, 'fuzz');
    const plist = buildPlist({ UDID, SERIAL: 'F2LXK0N8HG7F', PRODUCT: 'iPhone15,2', VERSION: '21A329', OS_VERSION: '17.0', LANGUAGE: 'en' });
    machineInfo = createSignedData(Buffer.from(plist), { certificatePem: device.cert.pem, privateKeyPem: device.keyPem });
    scepKey = await clientKey();
    scepCa = await testCa('Fuzz SCEP CA');
    csr = forgeCsr(scepKey, { challenge: 'c'.repeat(32) });
    pkiMsg = pkiMessage(csr, scepCa.cert.pem, scepKey).der;
    envelope = encryptEnvelopedData(csr, [scepCa.cert.pem]);
  });

  it('a valid MachineInfo verifies (the samples below are real messages)', () => {
    expect(verifyMachineInfo(machineInfo, anchors).info.serialNumber).toBe('F2LXK0N8HG7F');
    expect(readPkiMessage(pkiMsg).messageType).toBe('PKCSReq');
    expect(csrChallengePassword(csr)).toBe('c'.repeat(32));
    expect(decryptEnvelopedData(envelope, { certificatePem: scepCa.cert.pem, privateKeyPem: scepCa.keyPem }).content).toEqual(csr);
  });

  it('MachineInfo: mutated messages are refused with MachineInfoError, or verify to the same content', async () => {
    await heapBounded((sample) => {
      fc.assert(
        fc.property(mutations, (ms) => {
          const damaged = mutate(machineInfo, ms);
          typedOnly([MachineInfoError], () => {
            const v = verifyMachineInfo(damaged, anchors);
            // Only unsigned parts may change without harm.
            expect(v.info.serialNumber).toBe('F2LXK0N8HG7F');
            expect(v.signer.der).toEqual(device.cert.der);
          });
          typedOnly([MachineInfoError], () => verifyMachineInfoHeader(damaged.toString('base64'), anchors));
          sample();
        }),
        { numRuns: 300 },
      );
    });
  });

  it('SignedData: the DER reader (certificates by hash, not decoded) reads what the whole-message decoder reads, or steps aside', () => {
    const outcome = (read: () => SignedDataFields | undefined) => {
      try {
        const f = read();
        if (!f) return 'declined';
        const ber = (b: { toBER(): ArrayBuffer } | undefined) => (b ? Buffer.from(b.toBER()).toString('hex') : '-');
        return { fields: [f.version, f.digestAlgorithms, f.encap, f.signerInfos].map((b) => ber(b as never)), count: f.fieldCount, certs: f.certs.map((c) => c.info.sha256Thumbprint) };
      } catch (err) {
        // readSignedData's guard turns whatever asn1js throws into a PkiError.
        return `refused: ${String(err)}`;
      }
    };
    const samples = [machineInfo, pkiMsg];
    expect(outcome(() => signedDataFieldsFromDer(machineInfo))).toEqual(outcome(() => signedDataFields(machineInfo)));
    fc.assert(
      fc.property(fc.constantFrom(...samples), mutations, (sample, ms) => {
        const damaged = mutate(sample, ms);
        const fast = outcome(() => signedDataFieldsFromDer(damaged));
        if (fast === 'declined') return;
        const whole = outcome(() => signedDataFields(damaged));
        // Both read it the same, or both refuse it (the DER reader may name a narrower part).
        if (typeof fast === 'string' || typeof whole === 'string') expect([typeof fast, typeof whole]).toEqual(['string', 'string']);
        else expect(fast).toEqual(whole);
      }),
      { numRuns: 500 },
    );
  });

  it('MachineInfo: random bytes and random header text give MachineInfoError only', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1500 }), (b) => void typedOnly([MachineInfoError], () => verifyMachineInfo(b, anchors))), { numRuns: 200 });
    fc.assert(fc.property(fc.string({ maxLength: 400 }), (s) => void typedOnly([MachineInfoError], () => verifyMachineInfoHeader(s, anchors))), { numRuns: 200 });
  });

  it('MachineInfo: the size limits, at and one past', () => {
    const atLimit = Buffer.concat([machineInfo, Buffer.alloc(MACHINE_INFO_LIMITS.signedBytes - machineInfo.length)]);
    // Trailing zero padding is tolerated, so a message of exactly the limit is read and verified.
    expect(verifyMachineInfo(atLimit, anchors).info.udid).toBe(UDID);
    const over = Buffer.concat([atLimit, Buffer.alloc(1)]);
    let code: string | undefined;
    refuses([MachineInfoError], () => {
      try {
        verifyMachineInfo(over, anchors);
      } catch (err) {
        code = (err as MachineInfoError).code;
        throw err;
      }
    });
    expect(code).toBe('tooLarge');
    const header = (n: number) => 'A'.repeat(n - (n % 4));
    refuses([MachineInfoError], () => verifyMachineInfoHeader(header(MACHINE_INFO_LIMITS.headerChars + 4), anchors));
    expect(() => verifyMachineInfoHeader(header(MACHINE_INFO_LIMITS.headerChars + 4), anchors)).toThrow(/too large/);
    // At the header limit the decoded message is over the DER limit: refused as too large, after a cheap decode.
    expect(() => verifyMachineInfoHeader(header(MACHINE_INFO_LIMITS.headerChars), anchors)).toThrow(/larger than 65536/);
  });

  it('Mdm-Signature: mutated signatures, mutated bodies and random headers give IdentityError only; a changed body never passes', () => {
    const body = Buffer.from(buildPlist({ MessageType: 'Authenticate', UDID, Topic: 'com.apple.mgmt.x' }));
    const sig = createSignedData(body, { certificatePem: device.cert.pem, privateKeyPem: device.keyPem, detached: true });
    expect(signerOfMdmSignature(sig.toString('base64'), body).der).toEqual(device.cert.der);
    fc.assert(
      fc.property(mutations, (ms) => {
        const damagedSig = mutate(sig, ms);
        // A change to the unsigned certificate may still verify with the same key; the identity check then
        // refuses a certificate the CA never issued, so only the key must be the device's.
        // The certificate is taken as received, so an ignorable byte of its key encoding may differ: the key itself may not.
        typedOnly([IdentityError], () => expect(sameKey(signerOfMdmSignature(damagedSig.toString('base64'), body).publicKeySpki, device.cert.publicKeySpki)).toBe(true));
        const damagedBody = mutate(body, ms);
        const r = typedOnly([IdentityError], () => signerOfMdmSignature(sig.toString('base64'), damagedBody));
        if (!damagedBody.equals(body)) expect(r).toBe('refused');
      }),
      { numRuns: 250 },
    );
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => void typedOnly([IdentityError], () => signerOfMdmSignature(s, body))), { numRuns: 200 });
    // The header limit, at and past (base64 of nothing useful: refused either way, but only as IdentityError).
    refuses([IdentityError], () => signerOfMdmSignature('A'.repeat(MAX_SIGNATURE_HEADER), body));
    refuses([IdentityError], () => signerOfMdmSignature('A'.repeat(MAX_SIGNATURE_HEADER + 4), body));
    expect(() => signerOfMdmSignature('A'.repeat(MAX_SIGNATURE_HEADER + 4), body)).toThrow(/not base64/);
  });

  it('forwarded client certificates: mutated PEM/RFC 9440 and random header values give IdentityError only', () => {
    const pem = encodeURIComponent(device.cert.pem);
    const rfc9440 = `:${device.cert.der.toString('base64')}:`;
    expect(certificateFromHeader(pem).der).toEqual(device.cert.der);
    expect(certificateFromHeader(rfc9440).der).toEqual(device.cert.der);
    fc.assert(
      fc.property(mutations, (ms) => {
        typedOnly([IdentityError], () => certificateFromHeader(mutate(Buffer.from(pem), ms).toString('latin1')));
        typedOnly([IdentityError], () => certificateFromHeader(`:${mutate(device.cert.der, ms).toString('base64')}:`));
      }),
      { numRuns: 200 },
    );
    const text = fc.array(fc.oneof(fc.constantFrom('%', '%2', '%ZZ', '%0A', ':', '-----BEGIN CERTIFICATE-----', '-----END CERTIFICATE-----', 'MII', '\n'), fc.string({ maxLength: 10 })), { maxLength: 12 }).map((p) => p.join(''));
    fc.assert(fc.property(text, (s) => void typedOnly([IdentityError], () => certificateFromHeader(s))), { numRuns: 300 });
  });

  it('SCEP: mutated pkiMessages, CSRs and envelopes (splices and duplications included) give typed errors only', async () => {
    await heapBounded((sample) => {
      fc.assert(
        fc.property(mutations, (ms) => {
          typedOnly([MalformedPkiMessage], () => readPkiMessage(mutate(pkiMsg, ms)));
          typedOnly([MalformedPkiMessage], () => csrChallengePassword(mutate(csr, ms)));
          typedOnly(PKI_TYPES, () => decryptEnvelopedData(mutate(envelope, ms), { certificatePem: scepCa.cert.pem, privateKeyPem: scepCa.keyPem }));
          sample();
        }),
        { numRuns: 300 },
      );
    });
  });

  it('CSRs and certificates: mutated inputs give PkiError only', async () => {
    const der = (await createCsr({ subject: { CN: 'x' }, privateKeyPem: scepKey.keyPem })).der;
    await fc.assert(fc.asyncProperty(mutations, async (ms) => void (await typedOnlyAsync(PKI_TYPES, () => parseCsr(mutate(der, ms))))), { numRuns: 100 });
    fc.assert(fc.property(mutations, (ms) => void typedOnly(PKI_TYPES, () => parseCertificate(mutate(device.cert.der, ms)))), { numRuns: 200 });
  });

  it('ASN.1 nested thousands deep (definite and indefinite lengths, SEQUENCE, SET, constructed OCTET STRING) is refused without a crash', async () => {
    const readers: [string, readonly (abstract new (...a: never[]) => Error)[], (b: Buffer) => unknown][] = [
      ['verifySignedData', PKI_TYPES, (b) => verifySignedData(b)],
      ['verifySignedData (detached)', PKI_TYPES, (b) => verifySignedData(b, { detachedContent: Buffer.from('x') })],
      ['decryptEnvelopedData', PKI_TYPES, (b) => decryptEnvelopedData(b, { certificatePem: scepCa.cert.pem, privateKeyPem: scepCa.keyPem })],
      ['parseCertificate', PKI_TYPES, (b) => parseCertificate(b)],
      ['readCmsInput', PKI_TYPES, (b) => readCmsInput(b)],
      ['readPkiMessage', [MalformedPkiMessage], (b) => readPkiMessage(b)],
      ['csrChallengePassword', [MalformedPkiMessage], (b) => csrChallengePassword(b)],
      ['verifyMachineInfo', [MachineInfoError], (b) => verifyMachineInfo(b, anchors)],
      ['signerOfMdmSignature', [IdentityError], (b) => signerOfMdmSignature(b.toString('base64'), Buffer.from('x'))],
      ['certificateFromHeader', [IdentityError], (b) => certificateFromHeader(`:${b.toString('base64')}:`)],
    ];
    const nests: [string, Buffer][] = [];
    for (const depth of [100, 1_000, 10_000, 30_000]) {
      nests.push([`${depth} SEQUENCEs (definite)`, nestedDefinite(depth)]);
      nests.push([`${depth} SEQUENCEs (indefinite)`, nestedIndefinite(depth)]);
      nests.push([`${depth} SETs (indefinite)`, nestedIndefinite(depth, 0x31)]);
      nests.push([`${depth} constructed OCTET STRINGs`, nestedIndefinite(depth, 0x24)]);
      nests.push([`SignedData around ${depth} SEQUENCEs`, contentInfoAround(nestedIndefinite(depth))]);
    }
    await heapBounded((sample) => {
      for (const [name, bytes] of nests) {
        for (const [reader, types, read] of readers) {
          // readCmsInput only frames the bytes; everything else must refuse a nest.
          const r = typedOnly(types, () => read(bytes), `${reader} on ${name}`);
          if (reader !== 'readCmsInput') expect(r, `${reader} on ${name}`).toBe('refused');
        }
        sample();
      }
    });
  });

  it('random bytes behind a valid ASN.1 header reach the structure readers and give typed errors only', () => {
    const headed = fc.uint8Array({ maxLength: 800 }).map((b) => contentInfoAround(Buffer.from(b)));
    fc.assert(
      fc.property(headed, (b) => {
        typedOnly(PKI_TYPES, () => verifySignedData(b));
        typedOnly([MalformedPkiMessage], () => readPkiMessage(b));
        typedOnly([MachineInfoError], () => verifyMachineInfo(b, anchors));
      }),
      { numRuns: 300 },
    );
  });

  it('S/MIME and PEM input: at the size limit it is read, one byte more is refused unread', () => {
    const atLimit = Buffer.alloc(MAX_CMS_BYTES, 0x30);
    typedOnly(PKI_TYPES, () => readCmsInput(atLimit));
    let code: string | undefined;
    refuses(PKI_TYPES, () => {
      try {
        readCmsInput(Buffer.alloc(MAX_CMS_BYTES + 1, 0x30));
      } catch (err) {
        code = (err as PkiError).code;
        throw err;
      }
    });
    expect(code).toBe('tooLarge');
  });
});
