import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appleDeviceUrls } from '../../src/apple/device-urls.js';
import { hashChallenge } from '../../src/apple/scep/challenges.js';
import { loadConfiguredProfileSigner, SIGNER_VALIDITY_DAYS } from '../../src/ca/index.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { issueCertificate, parseCertificate } from '../../src/pki/certificates.js';
import { generateRsaKeyPair } from '../../src/pki/keys.js';
import { verifySignedData } from '../../src/pki/signed.js';
import { parsePlistDict } from '../../src/shared/plist.js';
import { DAY, MINUTE } from '../../src/shared/time.js';
import { openssl, tempDir, testCa, testLeaf } from '../pki/fixtures.js';
import { profileProblems } from './profile-schema.js';
import { PUBLIC_URL, scepHarness, TOPIC, type ScepHarness } from './scep-support.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

const FIXTURE = new URL('../fixtures/public/apple/enroll-scep-mdm.mobileconfig', import.meta.url);
const python = spawnSync('python3', ['-c', 'import plistlib']).status === 0;
const plistutil = spawnSync('plistutil', ['--version']).status === 0;
if (!python) console.warn('profile tests: python3 is missing, so the plistlib checks are skipped');
if (!plistutil) console.warn('profile tests: plistutil (libplist-utils) is missing, so the libplist round trip is skipped');

/** Python's plistlib reads the file; values come back as JSON (data as base64). */
function plistlib(file: string): any {
  const script = `
import base64, datetime, json, plistlib, sys
def enc(o):
    if isinstance(o, bytes): return {"$data": base64.b64encode(o).decode()}
    if isinstance(o, datetime.datetime): return {"$date": o.isoformat()}
    raise TypeError(type(o))
with open(sys.argv[1], "rb") as f: print(json.dumps(plistlib.load(f), default=enc))
`;
  const res = spawnSync('python3', ['-c', script, file]);
  if (res.status !== 0) throw new Error(`plistlib failed: ${res.stderr.toString()}`);
  return JSON.parse(res.stdout.toString());
}

const scepPayload = (p: any) => p.PayloadContent.find((x: any) => x.PayloadType === 'com.apple.security.scep');
const mdmPayload = (p: any) => p.PayloadContent.find((x: any) => x.PayloadType === 'com.apple.mdm');
const rootPayload = (p: any) => p.PayloadContent.find((x: any) => x.PayloadType === 'com.apple.security.root');

describe('enrollment profile (.mobileconfig)', () => {
  let h: ScepHarness;
  const tmp = tempDir('openenroll-profile-');
  let caPem: string;
  beforeAll(async () => {
    h = await scepHarness();
    caPem = await h.caPem();
  });
  afterAll(async () => {
    await h.close();
    tmp.cleanup();
  });

  it('is CMS SignedData that openssl verifies against the tenant CA, and independent plist parsers read', async () => {
    const intent = await h.intent();
    const { signed, xml } = await h.profile(intent);
    const signedFile = tmp.file('profile.mobileconfig', signed);
    const caFile = tmp.file('ca.pem', caPem);
    // The server's chain: the signer chains to the tenant CA; default purpose (S/MIME signing).
    const viaSmime = openssl(['smime', '-verify', '-inform', 'DER', '-in', signedFile, '-CAfile', caFile, '-attime', String(Math.floor(h.clock.now().getTime() / 1000))]);
    expect(viaSmime.toString()).toBe(xml);
    expect(openssl(['cms', '-verify', '-inform', 'DER', '-in', signedFile, '-CAfile', caFile, '-attime', String(Math.floor(h.clock.now().getTime() / 1000))]).toString()).toBe(xml);
    // Another CA doesn't validate it.
    const stranger = await testCa('Stranger');
    const strangerFile = tmp.file('stranger.pem', stranger.cert.pem);
    expect(() => openssl(['smime', '-verify', '-inform', 'DER', '-in', signedFile, '-CAfile', strangerFile])).toThrow(/verify/i);
    // A flipped byte in the content breaks the signature.
    const tampered = Buffer.from(signed);
    const at = tampered.indexOf(Buffer.from('com.apple.mdm'));
    tampered[at] = tampered[at]! ^ 0x20;
    expect(() => openssl(['smime', '-verify', '-inform', 'DER', '-in', tmp.file('tampered.der', tampered), '-CAfile', caFile])).toThrow();

    const plistFile = tmp.file('profile.plist', openssl(['smime', '-verify', '-inform', 'DER', '-noverify', '-in', signedFile]));
    const ours = parsePlistDict(xml) as any;
    if (python) {
      const py = plistlib(plistFile);
      expect(py.PayloadType).toBe('Configuration');
      expect(py.PayloadUUID).toBe(ours.PayloadUUID);
      expect(scepPayload(py).PayloadContent.CAFingerprint.$data).toBe(scepPayload(ours).PayloadContent.CAFingerprint.toString('base64'));
      expect(mdmPayload(py)).toEqual(mdmPayload(ours));
    }
    if (plistutil && python) {
      // libplist converts it to a binary plist; plistlib reads that back to the same values.
      const binFile = tmp.file('profile.bplist');
      const res = spawnSync('plistutil', ['-i', plistFile, '-o', binFile, '-f', 'bin']);
      expect(res.status, res.stderr.toString()).toBe(0);
      expect(fs.readFileSync(binFile).subarray(0, 6).toString()).toBe('bplist');
      expect(plistlib(binFile)).toEqual(plistlib(plistFile));
    }
  });

  it("conforms to Apple's profile schemas (TopLevel, common keys, SCEP, root, MDM)", async () => {
    for (const o of [{}, { enrollment_type: 'user', source: 'userEnrollment', ownership: 'personal' }, { platform: 'macOS' }] as const) {
      const { plist } = await h.profile(await h.intent(o), { managedAppleId: 'ada@contoso.example' });
      expect(profileProblems(plist)).toEqual([]);
    }
    // The checker itself catches departures.
    const { plist } = await h.profile(await h.intent());
    mdmPayload(plist).AccessRights = 2;
    mdmPayload(plist).ServerURL = 'http://x';
    scepPayload(plist).PayloadContent.Keysize = 3072;
    plist.Unknown = true;
    delete mdmPayload(plist).Topic;
    expect(profileProblems(plist)).toHaveLength(5);
  });

  it('carries the MDM payload, the SCEP payload with a fresh challenge and the CA as trust anchor', async () => {
    const intent = await h.intent({ serial_number: 'C02XYZ123456', udid: '00008030-000A1B2C3D4E5F60' });
    const { plist, challenge, profileUuid } = await h.profile(intent);
    const urls = appleDeviceUrls(PUBLIC_URL, h.tenantId);
    const scep = scepPayload(plist);
    const mdm = mdmPayload(plist);
    const root = rootPayload(plist);
    expect(plist).toMatchObject({ PayloadType: 'Configuration', PayloadVersion: 1, PayloadUUID: profileUuid, PayloadScope: 'System', PayloadDisplayName: 'Default MDM enrollment', PayloadOrganization: 'Default', TargetDeviceType: 1 });
    expect(mdm).toMatchObject({
      IdentityCertificateUUID: scep.PayloadUUID,
      Topic: TOPIC,
      ServerURL: urls.serverUrl,
      CheckInURL: urls.checkInUrl,
      AccessRights: 8191,
      CheckOutWhenRemoved: true,
      SignMessage: true,
      ServerCapabilities: ['com.apple.mdm.per-user-connections', 'com.apple.mdm.bootstraptoken'],
    });
    expect(mdm.EnrollmentMode).toBeUndefined();
    const ca = parseCertificate(caPem);
    expect(scep.PayloadContent).toMatchObject({ URL: urls.scepUrl, Keysize: 2048, 'Key Type': 'RSA', 'Key Usage': 5, Retries: 3, RetryDelay: 10, Subject: [[['O', 'OpenEnroll']], [['CN', intent.id]]] });
    // Apple's SCEP client takes MD5 or SHA-1 fingerprints (by length).
    expect(scep.PayloadContent.CAFingerprint.toString('hex').toUpperCase()).toBe(ca.sha1Thumbprint);
    expect(Buffer.from(root.PayloadContent).equals(ca.der)).toBe(true);
    // 256 random bits, stored only as a hash, bound to the intent, 15 minutes.
    expect(challenge).toMatch(/^[0-9a-f]{64}$/);
    const row = await h.t.store.db.selectFrom('scep_challenges').selectAll().where('challenge_hash', '=', hashChallenge(challenge)).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ tenant_id: h.tenantId, intent_id: intent.id, reusable: 0, used_at: null, expires_at: new Date(h.clock.now().getTime() + 15 * MINUTE).toISOString() });
    const everything = JSON.stringify(await h.t.store.db.selectFrom('scep_challenges').selectAll().execute());
    expect(everything).not.toContain(challenge);
    // Nothing about the device is in the profile.
    const xml = JSON.stringify(plist);
    expect(xml).not.toContain('C02XYZ123456');
    expect(xml).not.toContain('00008030');
    // The same key set as the public SCEP+MDM fixture (ours adds optional keys only).
    const fixture = parsePlistDict(fs.readFileSync(FIXTURE)) as any;
    expect(Object.keys(scep.PayloadContent)).toEqual(expect.arrayContaining(Object.keys(scepPayload(fixture).PayloadContent)));
    expect(Object.keys(mdm)).toEqual(expect.arrayContaining(Object.keys(mdmPayload(fixture))));
  });

  it('keeps identifiers and UUIDs stable per intent, with a new challenge each time', async () => {
    const intent = await h.intent();
    const a = await h.profile(intent);
    const b = await h.profile(intent);
    const c = await h.profile(await h.intent());
    const ids = (p: any) => [p.PayloadIdentifier, p.PayloadUUID, ...p.PayloadContent.flatMap((x: any) => [x.PayloadIdentifier, x.PayloadUUID])];
    expect(ids(b.plist)).toEqual(ids(a.plist));
    expect(a.challenge).not.toBe(b.challenge);
    for (const id of ids(c.plist)) expect(ids(a.plist)).not.toContain(id);
    expect(new Set(ids(a.plist)).size).toBe(8);
  });

  it('User Enrollment: BYOD with the managed Apple ID, no access rights', async () => {
    const intent = await h.intent({ enrollment_type: 'user', source: 'userEnrollment', ownership: 'personal', device_enrollment_type: 'appleUserEnrollment' });
    const { plist } = await h.profile(intent, { managedAppleId: 'ada@contoso.example' });
    const mdm = mdmPayload(plist);
    expect(mdm).toMatchObject({ EnrollmentMode: 'BYOD', ManagedAppleID: 'ada@contoso.example', SignMessage: true });
    expect(mdm.AccessRights).toBeUndefined();
    expect(plist.PayloadDescription).toMatch(/User Enrollment/);
  });

  it('reusable intents get a reusable challenge that expires with them; macOS targets Macs', async () => {
    const expires = new Date(h.clock.now().getTime() + 14 * DAY);
    const intent = await h.intent({ reusable: 1, expires_at: expires.toISOString(), platform: 'macOS', source: 'configuratorDirect' });
    const { challenge, plist } = await h.profile(intent, { challengeExpiresAt: expires });
    expect(plist.TargetDeviceType).toBe(5);
    const row = await h.t.store.db.selectFrom('scep_challenges').selectAll().where('challenge_hash', '=', hashChallenge(challenge)).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ reusable: 1, expires_at: expires.toISOString() });
  });

  it('refuses what Apple would: a non-MDM topic, an expired challenge window', async () => {
    const intent = await h.intent();
    await expect(h.t.store.transaction((trx) => h.apple.scep.profileIssuer.issueProfile(trx, intent, { topic: 'com.example.x', challengeExpiresAt: new Date(h.clock.now().getTime() + MINUTE) }))).rejects.toThrow(/com\.apple\.mgmt/);
    await expect(h.t.store.transaction((trx) => h.apple.scep.profileIssuer.issueProfile(trx, intent, { topic: TOPIC, challengeExpiresAt: h.clock.now() }))).rejects.toThrow(/expired/);
  });

  it('replaces the tenant signer when it nears expiry', async () => {
    const first = verifySignedData((await h.profile(await h.intent())).signed).signer;
    const saved = h.clock.now();
    h.clock.set(first.notAfter.getTime() - 29 * DAY);
    try {
      const second = verifySignedData((await h.profile(await h.intent())).signed, { trustAnchors: [caPem], now: h.clock.now() }).signer;
      expect(second.serialNumberHex).not.toBe(first.serialNumberHex);
      expect(Math.round((second.notAfter.getTime() - second.notBefore.getTime()) / DAY)).toBe(SIGNER_VALIDITY_DAYS);
      const third = verifySignedData((await h.profile(await h.intent())).signed).signer;
      expect(third.serialNumberHex).toBe(second.serialNumberHex);
      const signerSecrets = await h.t.store.db.selectFrom('secrets').select('id').where('tenant_id', '=', h.tenantId).where('kind', '=', 'profileSignerKey').execute();
      expect(signerSecrets).toHaveLength(1);
    } finally {
      h.clock.set(saved);
    }
  });
});

describe('enrollment profile signed with a configured certificate', () => {
  const tmp = tempDir('openenroll-signer-');
  afterAll(() => tmp.cleanup());

  it('signs with OPENENROLL_PROFILE_SIGNING_CERT_FILE/_KEY_FILE and ships its chain', async () => {
    const root = await testCa('Public Root (test)', { notBefore: new Date('2026-01-01T00:00:00Z') });
    const intermediate = await testLeaf(root, { CN: 'Public TLS CA (test)' }, { isCa: true, notBefore: new Date('2026-01-01T00:00:00Z'), validityDays: 3000 });
    const { privateKeyPem, publicKeyPem } = await generateRsaKeyPair();
    const tls = await issueCertificate({
      publicKey: publicKeyPem,
      issuerCertificatePem: intermediate.cert.pem,
      issuerPrivateKeyPem: intermediate.keyPem,
      subject: { CN: 'openenroll.test' },
      validityDays: 398,
      notBefore: new Date('2026-03-01T00:00:00Z'),
      keyUsages: ['digitalSignature', 'keyEncipherment'],
      extendedKeyUsages: ['serverAuth'],
    });
    const env = { OPENENROLL_PROFILE_SIGNING_CERT_FILE: tmp.file('tls.pem', tls.pem + intermediate.cert.pem), OPENENROLL_PROFILE_SIGNING_KEY_FILE: tmp.file('tls.key', privateKeyPem) };
    const h = await scepHarness({ env });
    try {
      const { signed, xml } = await h.profile(await h.intent());
      const verified = verifySignedData(signed, { trustAnchors: [root.cert.pem], now: h.clock.now() });
      expect(verified.signer.sha256Thumbprint).toBe(tls.sha256Thumbprint);
      expect(verified.certificates.map((c) => c.subject.text)).toContain(intermediate.cert.subject.text);
      const file = tmp.file('p.der', signed);
      // A TLS certificate is for serverAuth, so openssl needs -purpose any (devices don't check the purpose).
      const at = String(Math.floor(h.clock.now().getTime() / 1000));
      expect(openssl(['cms', '-verify', '-inform', 'DER', '-in', file, '-CAfile', tmp.file('root.pem', root.cert.pem), '-purpose', 'any', '-attime', at]).toString()).toBe(xml);
      // The tenant CA is still the SCEP trust anchor in the profile.
      expect(Buffer.from(rootPayload(parsePlistDict(xml)).PayloadContent).equals(parseCertificate(await h.caPem()).der)).toBe(true);
    } finally {
      await h.close();
    }
  });

  it('refuses to start with half a pair or a key that does not match', async () => {
    expect(() => loadConfig({ OPENENROLL_PROFILE_SIGNING_CERT_FILE: '/x.pem' })).toThrow(ConfigError);
    const a = await testCa('A');
    const b = await testCa('B');
    const files = { certFile: tmp.file('a.pem', a.cert.pem), keyFile: tmp.file('b.key', b.keyPem) };
    expect(() => loadConfiguredProfileSigner(files, new Date())).toThrow(/OPENENROLL_PROFILE_SIGNING.*doesn't match/);
    expect(() => loadConfiguredProfileSigner({ ...files, keyFile: files.certFile }, new Date())).toThrow(/OPENENROLL_PROFILE_SIGNING/);
    expect(() => loadConfiguredProfileSigner({ certFile: tmp.file('a.key', a.keyPem), keyFile: tmp.file('a2.key', a.keyPem) }, new Date())).toThrow(/no PEM CERTIFICATE/);
    expect(() => loadConfiguredProfileSigner({ certFile: files.certFile, keyFile: tmp.file('a3.key', a.keyPem) }, new Date('2040-01-01'))).toThrow(/expired/);
  });

  it('refuses an http public URL: Apple devices need https', async () => {
    const h = await scepHarness({ env: { OPENENROLL_PUBLIC_URL: 'http://openenroll.test' } });
    try {
      const intent = await h.intent();
      await expect(h.t.store.transaction((trx) => h.apple.scep.profileIssuer.issueProfile(trx, intent, { topic: TOPIC, challengeExpiresAt: new Date(h.clock.now().getTime() + MINUTE) }))).rejects.toThrow(/https/);
      expect(await h.t.store.db.selectFrom('scep_challenges').selectAll().execute()).toHaveLength(0);
    } finally {
      await h.close();
    }
  });
});
