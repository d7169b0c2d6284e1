import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { decryptServerToken, encryptServerToken, generateTokenEncryptionKeyPair, ServerTokenError, type TokenEncryptionKeyPair } from '../../src/apple/ade/server-token.js';
import { createCsr, parseCertificate, parseCsr } from '../../src/pki/certificates.js';
import { decryptEnvelopedData, encryptEnvelopedData } from '../../src/pki/enveloped.js';
import { PkiError } from '../../src/pki/errors.js';
import { derToPem, pemBlocks } from '../../src/pki/pem.js';
import { createSignedData, verifySignedData } from '../../src/pki/signed.js';
import { readCmsInput } from '../../src/pki/smime.js';

/** Parsers see hostile bytes (uploads, devices): they may succeed or throw their typed error, nothing else. */

type Mutation = { kind: 'flip' | 'set' | 'truncate' | 'insert' | 'delete'; at: number; byte: number };
const mutation = fc.record({ kind: fc.constantFrom('flip', 'set', 'truncate', 'insert', 'delete'), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }) as fc.Arbitrary<Mutation>;

function mutate(input: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === 'flip') b[at]! ^= 1 << m.byte % 8;
    else if (m.kind === 'set') b[at] = m.byte;
    else if (m.kind === 'truncate') b = b.subarray(0, at);
    else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
  }
  return b;
}

function onlyTyped(fn: () => unknown, ...types: (new (...args: never[]) => Error)[]): void {
  try {
    fn();
  } catch (err) {
    if (!types.some((t) => err instanceof t)) throw new Error(`untyped error escaped: ${String(err)}`, { cause: err });
  }
}

async function onlyTypedAsync(fn: () => Promise<unknown>, ...types: (new (...args: never[]) => Error)[]): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!types.some((t) => err instanceof t)) throw new Error(`untyped error escaped: ${String(err)}`, { cause: err });
  }
}

describe('parsers never throw anything but typed errors', () => {
  let kp: TokenEncryptionKeyPair;
  let envelope: Buffer;
  let signed: Buffer;
  let csrDer: Buffer;
  let p7m: string;
  beforeAll(async () => {
    kp = await generateTokenEncryptionKeyPair();
    envelope = encryptEnvelopedData(Buffer.from('hello'), [kp.certificatePem]);
    signed = createSignedData(Buffer.from('content'), { certificatePem: kp.certificatePem, privateKeyPem: kp.privateKeyPem });
    csrDer = (await createCsr({ subject: { CN: 'x' }, privateKeyPem: kp.privateKeyPem })).der;
    p7m = encryptServerToken(
      { consumer_key: 'a', consumer_secret: 'b', access_token: 'c', access_secret: 'd', access_token_expiry: '2099-01-01T00:00:00Z' },
      kp.certificatePem,
    );
  });
  const keys = () => ({ certificatePem: kp.certificatePem, privateKeyPem: kp.privateKeyPem });

  it('certificates: random bytes and mutated certificates', () => {
    const der = parseCertificate(kp.certificatePem).der;
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => onlyTyped(() => parseCertificate(bytes), PkiError)), { numRuns: 300 });
    fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => onlyTyped(() => parseCertificate(mutate(der, ms)), PkiError)), { numRuns: 400 });
    fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => onlyTyped(() => parseCertificate(derToPem(mutate(der, ms), 'CERTIFICATE')), PkiError)), { numRuns: 100 });
  });

  it('CSRs: mutated requests', async () => {
    await fc.assert(fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => onlyTypedAsync(() => parseCsr(mutate(csrDer, ms)), PkiError)), { numRuns: 200 });
  });

  it('PEM and S/MIME input: random text with PEM and MIME fragments', () => {
    const fragment = fc.constantFrom('-----BEGIN PKCS7-----', '-----END PKCS7-----', '-----BEGIN CMS-----', 'Content-Type: application/pkcs7-mime', 'Content-Transfer-Encoding: base64', '\r\n', '\n\n', 'MIIB', '=', ':');
    const text = fc.array(fc.oneof(fragment, fc.string({ maxLength: 20 })), { maxLength: 12 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(text, (t) => {
        onlyTyped(() => readCmsInput(t), PkiError);
        onlyTyped(() => pemBlocks(t), PkiError);
      }),
      { numRuns: 500 },
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => onlyTyped(() => readCmsInput(b), PkiError)), { numRuns: 300 });
  });

  it('EnvelopedData: mutated messages', () => {
    fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => onlyTyped(() => decryptEnvelopedData(mutate(envelope, ms), keys()), PkiError)), { numRuns: 200 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => onlyTyped(() => decryptEnvelopedData(Buffer.concat([Buffer.from([0x30]), b]), keys()), PkiError)), { numRuns: 200 });
  });

  it('SignedData: mutated messages (and a mutation never yields other verified content)', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) =>
        onlyTyped(() => {
          const res = verifySignedData(mutate(signed, ms));
          expect(res.content.toString()).toBe('content');
        }, PkiError),
      ),
      { numRuns: 300 },
    );
  });

  it('server tokens: mutated .p7m text and bytes only give ServerTokenError', () => {
    const text = Buffer.from(p7m);
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        const m = mutate(text, ms);
        onlyTyped(() => decryptServerToken(m.toString('latin1'), { certPem: kp.certificatePem, keyPem: kp.privateKeyPem }), ServerTokenError);
        onlyTyped(() => decryptServerToken(m, { certPem: kp.certificatePem, keyPem: kp.privateKeyPem }), ServerTokenError);
      }),
      { numRuns: 150 },
    );
  });
});
