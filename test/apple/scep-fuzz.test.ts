import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { csrChallengePassword, readPkiMessage } from '../../src/apple/scep/index.js';
import { MalformedPkiMessage } from '../../src/apple/scep/pki-message.js';
import { clientKey, forgeCsr, pkiMessage, readCertRep, scepHarness, type ClientKey, type ScepHarness } from './scep-support.js';

/** The pkiMessage reader and the PKIOperation endpoint on arbitrary and damaged input. */
describe('SCEP parsing under fuzzing', () => {
  let h: ScepHarness;
  let caPem: string;
  let key: ClientKey;
  let valid: Buffer;
  let challenge: string;
  beforeAll(async () => {
    h = await scepHarness();
    caPem = await h.caPem();
    key = await clientKey();
    challenge = (await h.profile(await h.intent())).challenge;
    valid = pkiMessage(forgeCsr(key, { challenge }), caPem, key).der;
  });
  afterAll(() => h.close());

  it('readPkiMessage and csrChallengePassword throw only MalformedPkiMessage on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        for (const fn of [readPkiMessage, csrChallengePassword]) {
          try {
            fn(bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(MalformedPkiMessage);
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('a damaged pkiMessage is answered with 400 or a signed CertRep FAILURE, logged without the challenge; only intact signed content is ever honoured', async () => {
    const refused = vi.spyOn(h.apple.scep.service, 'refused');
    const before = await h.counts();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: valid.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, flip) => {
        const damaged = Buffer.from(valid);
        damaged[at] = damaged[at]! ^ flip;
        const res = await h.post(damaged);
        expect([200, 400]).toContain(res.statusCode);
        if (res.statusCode === 200) {
          // Unsigned parts (e.g. the SignedData version) may change without harm; anything else is refused.
          const rep = readCertRep(res.body, caPem, { certPem: key.selfSigned.pem, keyPem: key.keyPem });
          expect(['0', '2']).toContain(rep.pkiStatus);
          if (rep.pkiStatus === '0') expect(rep.certificates[0]!.publicKeySpki).toEqual(key.selfSigned.publicKeySpki);
        }
      }),
      { numRuns: 60 },
    );
    expect(refused).toHaveBeenCalled();
    for (const call of refused.mock.calls) expect(JSON.stringify(call)).not.toContain(challenge);
    const after = await h.counts();
    // At most the one genuine issuance a harmless mutation may have let through.
    expect(Number(after.issued) - Number(before.issued)).toBeLessThanOrEqual(1);
    expect(after.cas).toBe(before.cas);
    refused.mockRestore();
  });
});
