import crypto from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBasicCredentials } from '../../src/apple/enrollment/machine-info-post.js';
import { createEnrollmentIntents, IntentUnusableError } from '../../src/apple/enrollment/intents.js';
import {
  anchorsFromPem,
  appleDeviceCaAnchors,
  MachineInfoError,
  osVersionFromBuild,
  platformOfProduct,
  verifyMachineInfo,
  verifyMachineInfoHeader,
  type MachineInfoAnchors,
} from '../../src/apple/enrollment/machine-info.js';
import { escapeHtml, FormError, parseForm, readCookie, SIGNIN_LIMITS, SignInThrottle, signInPage } from '../../src/apple/enrollment/web-signin.js';
import type { NewEnrollmentIntent } from '../../src/apple/mdm/contracts.js';
import { createSignedData } from '../../src/pki/index.js';
import { buildPlist } from '../../src/shared/plist.js';
import { DAY, ManualClock, MINUTE } from '../../src/shared/time.js';
import type { Store } from '../../src/store/db.js';
import { createTenant } from '../../src/tenancy/service.js';
import { createTestStore } from '../helpers/store.js';
import { testCa, testLeaf } from '../pki/fixtures.js';
import { signedMachineInfo, testDevice, testDeviceCa } from './enrollment-ade-support.js';

describe('MachineInfo (pure)', () => {
  let anchors: MachineInfoAnchors;
  beforeAll(async () => {
    anchors = anchorsFromPem((await testDeviceCa()).cert.pem, 'test');
  });

  it('knows iPhone, iPad, iPod and Mac products, and nothing else', () => {
    for (const p of ['iPhone15,2', 'iPad13,1', 'iPod9,1']) expect(platformOfProduct(p), p).toBe('iOS');
    for (const p of ['MacBookPro18,3', 'MacBookAir10,1', 'Mac14,2', 'Macmini9,1', 'MacPro7,1', 'iMac21,1', 'iMacPro1,1', 'VirtualMac2,1', 'ADP3,2']) expect(platformOfProduct(p), p).toBe('macOS');
    for (const p of ['AppleTV11,1', 'Watch6,1', 'RealityDevice14,1', 'AudioAccessory5,1']) expect(platformOfProduct(p), p).toBeNull();
  });

  it('derives the major OS version from the build train where OS_VERSION is missing', () => {
    const cases: [Parameters<typeof osVersionFromBuild>[0], string, string | null][] = [
      ['iOS', '11A465', '7'],
      ['iOS', '16G77', '12'],
      ['iOS', '17A577', '13'],
      ['iOS', '21A329', '17'],
      ['iOS', '22A3354', '18'],
      ['iOS', '23A341', '26'],
      ['iOS', '9A334', null],
      ['iOS', 'garbage', null],
      ['macOS', '13A603', '10.9'],
      ['macOS', '18G103', '10.14'],
      ['macOS', '19A583', '10.15'],
      ['macOS', '20A2411', '11'],
      ['macOS', '24A335', '15'],
      ['macOS', '25A354', '26'],
      ['macOS', '12A269', null],
    ];
    for (const [platform, build, want] of cases) expect(osVersionFromBuild(platform, build), `${platform} ${build}`).toBe(want);
  });

  it('verifies a signed MachineInfo and reads its keys', async () => {
    const d = await testDevice({ product: 'MacBookPro18,3', version: '23A344', osVersion: '14.0' });
    const { info, signer } = verifyMachineInfo(signedMachineInfo(d, { MDM_CAN_REQUEST_SOFTWARE_UPDATE: true, MEID: '35209900176148' }), anchors);
    expect(info).toEqual({
      udid: d.udid,
      serialNumber: d.serial,
      product: 'MacBookPro18,3',
      buildVersion: '23A344',
      osVersion: '14.0',
      imei: null,
      meid: '35209900176148',
      language: 'en',
      mdmCanRequestSoftwareUpdate: true,
      softwareUpdateDeviceId: null,
      platform: 'macOS',
    });
    expect(signer.subject.text).toContain(d.udid);
  });

  it('accepts a chain through an intermediate the message carries, and refuses a self-signed signer', async () => {
    const root = await testCa('Test Apple Root');
    const intermediate = await testLeaf(root, { CN: 'Test iPhone Device CA' }, { isCa: true });
    const leaf = await testLeaf(intermediate, { CN: 'device' });
    const plist = Buffer.from(buildPlist({ UDID: '00008110-0123456789ABCDEF', SERIAL: 'C02ABC', PRODUCT: 'iPhone15,2', VERSION: '21A329' }));
    const rootAnchor = anchorsFromPem(root.cert.pem, 'root');
    const withChain = createSignedData(plist, { certificatePem: leaf.cert.pem, privateKeyPem: leaf.keyPem, chainPems: [intermediate.cert.pem] });
    expect(verifyMachineInfo(withChain, rootAnchor).info.serialNumber).toBe('C02ABC');
    const withoutChain = createSignedData(plist, { certificatePem: leaf.cert.pem, privateKeyPem: leaf.keyPem });
    expect(() => verifyMachineInfo(withoutChain, rootAnchor)).toThrow(expect.objectContaining({ code: 'untrusted' }));
    const selfSigned = await testCa('Me');
    expect(() => verifyMachineInfo(createSignedData(plist, { certificatePem: selfSigned.cert.pem, privateKeyPem: selfSigned.keyPem }), rootAnchor)).toThrow(expect.objectContaining({ code: 'untrusted' }));
  });

  it("doesn't check validity dates (Apple's device CA expired in 2014 and is still what devices chain to)", async () => {
    const ca = await testCa('Expired device CA', { notBefore: new Date('2007-04-16T00:00:00Z'), validityDays: 365 });
    const leaf = await testLeaf(ca, { CN: 'old device' }, { notBefore: new Date('2007-05-01T00:00:00Z'), validityDays: 30 });
    const plist = Buffer.from(buildPlist({ UDID: 'ABCDEF0123456789', SERIAL: 'DNPXYZ', PRODUCT: 'iPad13,1', VERSION: '21A329' }));
    const signed = createSignedData(plist, { certificatePem: leaf.cert.pem, privateKeyPem: leaf.keyPem });
    expect(verifyMachineInfo(signed, anchorsFromPem(ca.cert.pem, 'old')).info.platform).toBe('iOS');
  });

  it('ships Apple iPhone Device CA as the default anchor, which a test device does not chain to', async () => {
    const apple = appleDeviceCaAnchors();
    expect(apple.anchors[0]!.subject.text).toContain('Apple iPhone Device CA');
    expect(apple.anchors[0]!.sha256Thumbprint).toBe('76F27D00E1333BC88DE0E2916C38C9A7F2B75774C25A794C092A80E3C4C66CCE');
    const d = await testDevice();
    expect(() => verifyMachineInfo(signedMachineInfo(d), apple)).toThrow(expect.objectContaining({ code: 'untrusted' }));
  });

  it('reads the header as strict base64 with limits', async () => {
    const d = await testDevice();
    const b64 = signedMachineInfo(d).toString('base64');
    expect(verifyMachineInfoHeader(b64, anchors).info.serialNumber).toBe(d.serial);
    expect(verifyMachineInfoHeader(b64.replace(/(.{64})/g, '$1\n'), anchors).info.serialNumber).toBe(d.serial);
    expect(() => verifyMachineInfoHeader(undefined, anchors)).toThrow(expect.objectContaining({ code: 'malformed' }));
    expect(() => verifyMachineInfoHeader([b64, b64], anchors)).toThrow(expect.objectContaining({ code: 'malformed' }));
    expect(() => verifyMachineInfoHeader('***', anchors)).toThrow(expect.objectContaining({ code: 'malformed' }));
    expect(() => verifyMachineInfoHeader('A'.repeat(88 * 1024 + 1), anchors)).toThrow(expect.objectContaining({ code: 'tooLarge' }));
  });

  it('refuses a plist over 16 KiB inside a valid signature, and binary plists', async () => {
    const d = await testDevice();
    const big = signedMachineInfo(d, { LANGUAGE: 'en', PADDING: 'x'.repeat(17 * 1024) });
    expect(() => verifyMachineInfo(big, anchors)).toThrow(expect.objectContaining({ code: 'tooLarge' }));
    const binary = createSignedData(Buffer.from('bplist00\u00d1\u0001\u0002'), { certificatePem: d.identity.cert.pem, privateKeyPem: d.identity.keyPem });
    expect(() => verifyMachineInfo(binary, anchors)).toThrow(expect.objectContaining({ code: 'malformed' }));
  });

  it('never throws anything but a MachineInfoError, whatever the bytes (property)', async () => {
    const d = await testDevice();
    const good = signedMachineInfo(d);
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 2048 }), fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
        const b = Buffer.from(good);
        b[i] = b[i]! ^ x;
        return b;
      })), (bytes) => {
        try {
          verifyMachineInfo(bytes, anchors);
        } catch (err) {
          expect(err).toBeInstanceOf(MachineInfoError);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('anchor bundles must hold certificates', () => {
    expect(() => anchorsFromPem('nothing here', 'file')).toThrow(/no PEM CERTIFICATE/);
  });
});

describe('sign-in helpers (pure)', () => {
  it('parses forms with one value per name and a field limit', () => {
    expect(parseForm('a=1&b=x+y&c=%3C')).toEqual({ a: '1', b: 'x y', c: '<' });
    expect(() => parseForm('a=1&a=2')).toThrow(FormError);
    expect(() => parseForm(Array.from({ length: 33 }, (_, i) => `f${i}=1`).join('&'))).toThrow(FormError);
    expect(parseForm('__proto__=x').__proto__).toBe('x');
  });

  it('reads cookies and Basic credentials', () => {
    expect(readCookie('a=1; oe_ade_session=abc; b=2', 'oe_ade_session')).toBe('abc');
    expect(readCookie(undefined, 'x')).toBeUndefined();
    expect(parseBasicCredentials(`Basic ${Buffer.from('ada@contoso.test:p:ss').toString('base64')}`)).toEqual({ userName: 'ada@contoso.test', password: 'p:ss' });
    expect(parseBasicCredentials('Bearer abc')).toBeUndefined();
    expect(parseBasicCredentials(`Basic ${Buffer.from('no-colon').toString('base64')}`)).toBeUndefined();
    expect(parseBasicCredentials(`Basic ${'A'.repeat(4000)}`)).toBeUndefined();
  });

  it('escapes everything it renders', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    const page = signInPage({ action: '/x?a="b"', csrfToken: 't', intro: '<script>alert(1)</script>', userName: '"><img>' });
    expect(page).not.toContain('<script>');
    expect(page).not.toContain('"><img>');
  });
});

describe('stores', () => {
  let store: Store;
  let tenantId: string;
  const clock = new ManualClock('2026-03-02T08:00:00.000Z');
  beforeAll(async () => {
    store = await createTestStore();
    tenantId = (await createTenant(store, { displayName: 'Units' })).id;
  });
  afterAll(async () => store.close());

  const intent = (over: Partial<NewEnrollmentIntent> = {}): NewEnrollmentIntent => ({
    tenantId,
    source: 'ade',
    enrollmentType: 'device',
    platform: 'iOS',
    serialNumber: 'C02XYZ',
    ownership: 'company',
    deviceEnrollmentType: 'appleBulkWithoutUser',
    expiresAt: new Date(clock.now().getTime() + DAY),
    ...over,
  });

  it('intents: random 128-bit ids, consumed once; reusable ones never; expired and unknown ones refused', async () => {
    const intents = createEnrollmentIntents(clock);
    const a = await store.transaction((trx) => intents.create(trx, intent({ scopeTagIds: ['0', '3'], gateRequest: { x: 1 } })));
    const b = await store.transaction((trx) => intents.create(trx, intent()));
    expect(a.id).toMatch(/^[0-9a-f]{32}$/);
    expect(a.id).not.toBe(b.id);
    expect(await intents.get(store.db, tenantId, a.id)).toMatchObject({ scope_tag_ids: '["0","3"]', gate_request: '{"x":1}', consumed_at: null });
    expect(await intents.get(store.db, 'another-tenant', a.id)).toBeUndefined();
    expect(await intents.get(store.db, tenantId, 'not-an-id')).toBeUndefined();

    await store.transaction((trx) => intents.consume(trx, tenantId, a.id));
    expect((await intents.get(store.db, tenantId, a.id))!.consumed_at).toBe(clock.now().toISOString());
    await expect(store.transaction((trx) => intents.consume(trx, tenantId, a.id))).rejects.toMatchObject({ reason: 'consumed' });
    await expect(store.transaction((trx) => intents.consume(trx, 'another-tenant', b.id))).rejects.toMatchObject({ reason: 'notFound' });
    await expect(store.transaction((trx) => intents.consume(trx, tenantId, crypto.randomBytes(16).toString('hex')))).rejects.toBeInstanceOf(IntentUnusableError);

    const reusable = await store.transaction((trx) => intents.create(trx, intent({ reusable: true, expiresAt: new Date(clock.now().getTime() + 14 * DAY) })));
    for (let i = 0; i < 3; i++) await store.transaction((trx) => intents.consume(trx, tenantId, reusable.id));
    expect((await intents.get(store.db, tenantId, reusable.id))!.consumed_at).toBeNull();

    const short = await store.transaction((trx) => intents.create(trx, intent({ expiresAt: new Date(clock.now().getTime() + MINUTE) })));
    clock.advance(MINUTE);
    await expect(store.transaction((trx) => intents.consume(trx, tenantId, short.id))).rejects.toMatchObject({ reason: 'expired' });
    await expect(store.transaction((trx) => intents.create(trx, intent({ expiresAt: clock.now() })))).rejects.toThrow(/future/);
  });

  it('intents: two concurrent Authenticates can use a one-time intent only once', async () => {
    const intents = createEnrollmentIntents(clock);
    const a = await store.transaction((trx) => intents.create(trx, intent()));
    const results = await Promise.allSettled([0, 1, 2].map(() => store.transaction((trx) => intents.consume(trx, tenantId, a.id))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('throttle: an address locks at its 30th failure in 15 minutes (29 is fine), for 15 minutes; old failures age out', async () => {
    const throttle = new SignInThrottle(clock);
    const ip = { kind: 'address' as const, value: '192.0.2.7' };
    for (let i = 0; i < SIGNIN_LIMITS.failures.address - 1; i++) await throttle.recordFailure(store, tenantId, [ip]);
    expect(await throttle.lockedUntil(store.db, tenantId, [ip])).toBeNull();
    // The window slides past: the 29 failures no longer count.
    clock.advance(15 * MINUTE + 1);
    await throttle.recordFailure(store, tenantId, [ip]);
    expect(await throttle.lockedUntil(store.db, tenantId, [ip])).toBeNull();
    for (let i = 0; i < SIGNIN_LIMITS.failures.address - 1; i++) await throttle.recordFailure(store, tenantId, [ip]);
    const until = await throttle.lockedUntil(store.db, tenantId, [ip]);
    expect(until?.toISOString()).toBe(new Date(clock.now().getTime() + 15 * MINUTE).toISOString());
    // Case and spacing of a subject don't matter; other tenants and subjects aren't affected.
    expect(await throttle.lockedUntil(store.db, tenantId, [{ kind: 'address', value: ' 192.0.2.7 ' }])).not.toBeNull();
    expect(await throttle.lockedUntil(store.db, tenantId, [{ kind: 'user', value: '192.0.2.7' }])).toBeNull();
    expect(await throttle.lockedUntil(store.db, 'another-tenant', [ip])).toBeNull();
    clock.advance(15 * MINUTE);
    expect(await throttle.lockedUntil(store.db, tenantId, [ip])).toBeNull();
    // Only hashes are stored.
    const rows = await store.db.selectFrom('enrollment_signin_throttle').select('key_hash').execute();
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.key_hash))).toBe(true);
  });

  it('throttle: a user locks at 10, a device at 10; clear forgets them', async () => {
    const throttle = new SignInThrottle(clock);
    const user = { kind: 'user' as const, value: 'Ada@Contoso.test' };
    const device = { kind: 'device' as const, value: 'C02XYZ' };
    for (let i = 0; i < 9; i++) await throttle.recordFailure(store, tenantId, [user, device]);
    expect(await throttle.lockedUntil(store.db, tenantId, [user])).toBeNull();
    await throttle.clear(store.db, tenantId, [user]);
    await throttle.recordFailure(store, tenantId, [user, device]);
    expect(await throttle.lockedUntil(store.db, tenantId, [user])).toBeNull();
    expect(await throttle.lockedUntil(store.db, tenantId, [device])).not.toBeNull();
  });
});
