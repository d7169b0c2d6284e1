import crypto from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import plist from 'plist';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AppleModule } from '../../src/apple/module.js';
import { EXPIRY_ALERT_MESSAGE, EXPIRY_CHECK_JOB } from '../../src/apple/push-certificate/index.js';
import { GraphError } from '../../src/graph/errors.js';
import { certificateMatchesKey, parseCertificate, parseCsr } from '../../src/pki/certificates.js';
import { pemBlocks } from '../../src/pki/pem.js';
import { DAY, ManualClock } from '../../src/shared/time.js';
import { loadConfig } from '../../src/config.js';
import { buildApp } from '../../src/server/app.js';
import { createStore } from '../../src/store/db.js';
import { createTestApp, testKeyring, type TestApp } from '../helpers/app.js';
import { applePushCertificate, openssl, tempDir, testCa, testLeaf, type TestIdentity } from '../pki/fixtures.js';

const PATH = '/beta/deviceManagement/applePushNotificationCertificate';
const GENERATE = `${PATH}/generateApplePushNotificationCertificateSigningRequest`;
const DOWNLOAD = `${PATH}/downloadApplePushNotificationCertificateSigningRequest()`;
const START = '2026-01-10T08:00:00.000Z';

interface Harness {
  t: TestApp;
  clock: ManualClock;
  apple: AppleModule;
  get(key?: string): Promise<Record<string, unknown>>;
  generate(key?: string): Promise<string>;
  upload(payload: Record<string, unknown>, key?: string): Promise<LightMyRequestResponse>;
  issue(csrPem: string, opts?: { uuid?: string; notBefore?: Date; uid?: string }): Promise<{ pem: string; uuid: string; topic: string; serial: string; notAfter: Date }>;
  auditCount(): Promise<number>;
}

let appleCa: TestIdentity;
beforeAll(async () => {
  appleCa = await testCa('Apple Application Integration 2 Certification Authority (test)');
});

async function harness(env?: Record<string, string>): Promise<Harness> {
  const clock = new ManualClock(START);
  const t = await createTestApp({ clock, ...(env ? { env } : {}) });
  const apple = t.app.modules.find((m) => m.name === 'apple') as AppleModule;
  return {
    t,
    clock,
    apple,
    async get(key) {
      const res = await t.request({ method: 'GET', url: PATH, ...(key ? { key } : {}) });
      expect(res.statusCode).toBe(200);
      return res.json();
    },
    async generate(key) {
      const res = await t.request({ method: 'POST', url: GENERATE, ...(key ? { key } : {}) });
      expect(res.statusCode, res.body).toBe(200);
      return res.json().value as string;
    },
    upload: (payload, key) => t.request({ method: 'PATCH', url: PATH, payload, ...(key ? { key } : {}) }),
    async issue(csrPem, opts = {}) {
      const csr = await parseCsr(csrPem);
      const { cert, uuid, topic } = await applePushCertificate(appleCa, csr.publicKeySpki, { notBefore: clock.now(), ...opts });
      return { pem: cert.pem, uuid, topic, serial: cert.serialNumberHex, notAfter: cert.notAfter };
    },
    async auditCount() {
      return Number((await t.request({ method: 'GET', url: '/beta/deviceManagement/auditEvents/$count' })).body);
    },
  };
}

async function gateError(h: Harness, tenantId = h.t.tenantId): Promise<GraphError> {
  try {
    await h.apple.requireReadyPushCertificate(h.t.store.db, tenantId, h.clock.now());
  } catch (e) {
    expect(e).toBeInstanceOf(GraphError);
    return e as GraphError;
  }
  throw new Error('expected the gate to refuse');
}

describe('Apple MDM push certificate', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(async () => h.t.close());

  it('answers the unconfigured singleton with nulls and status notConfigured, on beta and v1.0', async () => {
    for (const version of ['beta', 'v1.0']) {
      const other = await h.t.createTenant(`fresh ${version}`);
      const res = await h.t.request({ method: 'GET', url: `/${version}/deviceManagement/applePushNotificationCertificate`, key: other.adminKey });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        '@odata.context': `http://openenroll.test/${version}/$metadata#deviceManagement/applePushNotificationCertificate/$entity`,
        '@odata.type': '#microsoft.graph.applePushNotificationCertificate',
        id: null,
        appleIdentifier: null,
        topicIdentifier: null,
        lastModifiedDateTime: null,
        expirationDateTime: null,
        certificateUploadStatus: null,
        certificateUploadFailureReason: null,
        certificateSerialNumber: null,
        certificate: null,
        status: 'notConfigured',
        daysUntilExpiration: null,
        gracePeriodEndDateTime: null,
        subjectId: null,
      });
    }
  });

  it('blocks Apple enrollment until a certificate is uploaded, saying why', async () => {
    const e = await gateError(h);
    expect(e).toMatchObject({ statusCode: 409, code: 'PushCertificateRequired' });
    expect(e.message).toMatch(/no Apple MDM push certificate is configured/);
  });

  it('runs the whole journey: CSR → Apple → upload → active, with the key kept encrypted', async () => {
    // Downloading with no pending request generates one (Kiota sends the empty parentheses).
    const first = await h.t.request({ method: 'GET', url: DOWNLOAD });
    expect(first.statusCode).toBe(200);
    expect(first.json()['@odata.context']).toBe('http://openenroll.test/beta/$metadata#Edm.String');
    const csrPem = first.json().value as string;
    expect(csrPem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n/);
    const tmp = tempDir();
    try {
      expect(openssl(['req', '-in', tmp.file('push.csr', csrPem), '-verify', '-noout', '-text']).toString()).toContain('Public-Key: (2048 bit)');
    } finally {
      tmp.cleanup();
    }
    expect((await parseCsr(csrPem)).subject.text).toBe('CN=OpenEnroll MDM Push, O=Default');
    // The same pending request comes back until a new one is generated.
    expect((await h.t.request({ method: 'GET', url: `/v1.0/deviceManagement/applePushNotificationCertificate/microsoft.graph.downloadApplePushNotificationCertificateSigningRequest` })).json().value).toBe(csrPem);
    expect((await h.get()).status).toBe('notConfigured');

    const issued = await h.issue(csrPem);
    const res = await h.upload({ appleIdentifier: 'mdm-admins@contoso.com', certificate: issued.pem });
    expect(res.statusCode, res.body).toBe(200);
    const expected = {
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/applePushNotificationCertificate/$entity',
      '@odata.type': '#microsoft.graph.applePushNotificationCertificate',
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      appleIdentifier: 'mdm-admins@contoso.com',
      topicIdentifier: issued.topic,
      lastModifiedDateTime: START,
      expirationDateTime: issued.notAfter.toISOString(),
      certificateUploadStatus: null,
      certificateUploadFailureReason: null,
      certificateSerialNumber: issued.serial,
      certificate: null,
      status: 'active',
      daysUntilExpiration: 365,
      gracePeriodEndDateTime: new Date(issued.notAfter.getTime() + 30 * DAY).toISOString(),
      subjectId: issued.uuid,
    };
    expect(res.json()).toEqual(expected);
    expect(issued.notAfter.toISOString()).toBe('2027-01-10T08:00:00.000Z');
    expect(await h.get()).toEqual(expected);

    // The gate hands enrollment the topic, certificate and matching key.
    const ready = await h.apple.requireReadyPushCertificate(h.t.store.db, h.t.tenantId, h.clock.now());
    expect(ready.topic).toBe(issued.topic);
    expect(parseCertificate(ready.certificatePem).serialNumberHex).toBe(issued.serial);
    expect(certificateMatchesKey(ready.certificatePem, ready.keyPem)).toBe(true);
    // The key is only in the secrets table, encrypted.
    const row = await h.t.store.db.selectFrom('apple_push_certificates').selectAll().where('tenant_id', '=', h.t.tenantId).executeTakeFirstOrThrow();
    expect(row.pending_csr_pem).toBeNull();
    const secrets = await h.t.store.db.selectFrom('secrets').selectAll().where('tenant_id', '=', h.t.tenantId).where('kind', '=', 'applePushCertificateKey').execute();
    expect(secrets.map((s) => s.id)).toEqual([row.key_secret_id]);
    expect(secrets[0]!.ciphertext).not.toContain('PRIVATE KEY');

    // A new request after upload is for renewal: the current certificate stays in use.
    const renewalCsr = await h.generate();
    expect(renewalCsr).not.toBe(csrPem);
    expect((await h.get()).certificateSerialNumber).toBe(issued.serial);
  });

  it('renews with the same topic (serial and expiry change), keeps the key matching, and drops the old key', async () => {
    const before = await h.get();
    h.clock.advance(300 * DAY);
    const csrPem = (await h.t.request({ method: 'GET', url: DOWNLOAD })).json().value as string;
    const renewed = await h.issue(csrPem, { uuid: before.subjectId as string });
    const res = await h.upload({ appleIdentifier: 'mdm-admins@contoso.com', certificate: renewed.pem });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      id: before.id,
      topicIdentifier: before.topicIdentifier,
      certificateSerialNumber: renewed.serial,
      expirationDateTime: renewed.notAfter.toISOString(),
      lastModifiedDateTime: h.clock.now().toISOString(),
      status: 'active',
      daysUntilExpiration: 365,
    });
    expect(renewed.serial).not.toBe(before.certificateSerialNumber);
    const ready = await h.apple.requireReadyPushCertificate(h.t.store.db, h.t.tenantId);
    expect(certificateMatchesKey(ready.certificatePem, ready.keyPem)).toBe(true);
    expect(certificateMatchesKey(renewed.pem, ready.keyPem)).toBe(true);
    const keys = await h.t.store.db.selectFrom('secrets').select('id').where('tenant_id', '=', h.t.tenantId).where('kind', '=', 'applePushCertificateKey').execute();
    expect(keys).toHaveLength(1);
    // Uploading the same certificate again is harmless (the current key still matches).
    expect((await h.upload({ appleIdentifier: 'mdm-admins@contoso.com', certificate: renewed.pem })).statusCode).toBe(200);
  });

  it('refuses a renewal with another topic and changes nothing', async () => {
    const before = await h.get();
    const audits = await h.auditCount();
    const csrPem = await h.generate();
    const afterCsr = await h.auditCount();
    expect(afterCsr).toBe(audits + 1);
    const foreign = await h.issue(csrPem); // a new uuid: "Create" instead of "Renew" in Apple's portal
    const res = await h.upload({ appleIdentifier: 'mdm-admins@contoso.com', certificate: foreign.pem });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({ code: 'Conflict', target: 'certificate' });
    expect(res.json().error.message).toContain(foreign.topic);
    expect(res.json().error.message).toMatch(/every enrolled Apple device is bound to the configured topic/i);
    expect(res.json().error.message).toMatch(/Renew the existing certificate .* same Apple ID/);
    expect(await h.get()).toEqual(before);
    expect(await h.auditCount()).toBe(afterCsr);
    // The pending request is still there for a proper renewal.
    const row = await h.t.store.db.selectFrom('apple_push_certificates').select('pending_csr_pem').where('tenant_id', '=', h.t.tenantId).executeTakeFirstOrThrow();
    expect(row.pending_csr_pem).toBe(csrPem);
  });

  it('refuses a certificate whose key matches neither the pending request nor the current key', async () => {
    const before = await h.get();
    const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const stranger = await applePushCertificate(appleCa, publicKey.export({ type: 'spki', format: 'pem' }).toString(), {
      uuid: before.subjectId as string,
      notBefore: h.clock.now(),
    });
    const res = await h.upload({ appleIdentifier: 'mdm-admins@contoso.com', certificate: stranger.cert.pem });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'BadRequest', target: 'certificate' });
    expect(res.json().error.message).toMatch(/'certificate'.*public key doesn't match the certificate signing request/);
    expect(await h.get()).toEqual(before);
  });

  it('validates the body, naming the property', async () => {
    const current = await h.get();
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ certificate: 'x' }, 'appleIdentifier', /is required/],
      [{ appleIdentifier: '' }, 'appleIdentifier', /.+/],
      [{ appleIdentifier: 'not-an-email' }, 'appleIdentifier', /email address/],
      [{ appleIdentifier: 'a@b.com', certificate: 'garbage' }, 'certificate', /PEM certificate downloaded from the Apple Push Certificates Portal/],
      [{ appleIdentifier: 'a@b.com', certificate: 42 }, 'certificate', /.+/],
      [{ appleIdentifier: 'a@b.com', topicIdentifier: 'com.apple.mgmt.x' }, 'topicIdentifier', /not a known property/],
    ];
    for (const [payload, target, msg] of cases) {
      const res = await h.upload(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.target).toBe(target);
      expect(res.json().error.message).toMatch(msg);
    }
    // Not an MDM push certificate (no com.apple.mgmt. UID).
    const csrPem = (await h.t.request({ method: 'GET', url: DOWNLOAD })).json().value as string;
    const notPush = await h.issue(csrPem, { uid: 'com.example.push' });
    const np = await h.upload({ appleIdentifier: 'a@b.com', certificate: notPush.pem });
    expect(np.statusCode).toBe(400);
    expect(np.json().error.message).toMatch(/not an Apple MDM push certificate/);
    // Expired.
    const old = await h.issue(csrPem, { uuid: current.subjectId as string, notBefore: new Date(h.clock.now().getTime() - 366 * DAY) });
    const ex = await h.upload({ appleIdentifier: 'a@b.com', certificate: old.pem });
    expect(ex.statusCode).toBe(400);
    expect(ex.json().error).toMatchObject({ target: 'certificate', message: expect.stringMatching(/expired on/) });
    expect(await h.get()).toEqual(current);
  });

  it('takes the certificate out of a PEM bundle, and a new Apple ID alone (Managed Apple ID migration)', async () => {
    const current = await h.get();
    const csrPem = (await h.t.request({ method: 'GET', url: DOWNLOAD })).json().value as string;
    const renewed = await h.issue(csrPem, { uuid: current.subjectId as string });
    const bundle = `${appleCa.cert.pem}${renewed.pem}`;
    const res = await h.upload({ appleIdentifier: 'mdm-admins@contoso.com', certificate: bundle, '@odata.type': '#microsoft.graph.applePushNotificationCertificate' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().certificateSerialNumber).toBe(renewed.serial);

    const moved = await h.upload({ appleIdentifier: 'mdm@contoso.appleid.com', certificate: null });
    expect(moved.statusCode).toBe(200);
    expect(moved.json()).toMatchObject({ appleIdentifier: 'mdm@contoso.appleid.com', certificateSerialNumber: renewed.serial, topicIdentifier: current.topicIdentifier });
    const audit = (await h.t.request({ method: 'GET', url: `/beta/deviceManagement/auditEvents?$filter=activity eq 'Patch Apple MDM push certificate'` })).json().value;
    expect(audit[0].resources[0].modifiedProperties).toContainEqual({ displayName: 'appleIdentifier', oldValue: 'mdm-admins@contoso.com', newValue: 'mdm@contoso.appleid.com' });
  });

  it('supports $select on the singleton', async () => {
    const res = await h.t.request({ method: 'GET', url: `${PATH}?$select=topicIdentifier,status,daysUntilExpiration` });
    expect(Object.keys(res.json()).sort()).toEqual(['@odata.context', '@odata.type', 'daysUntilExpiration', 'status', 'topicIdentifier']);
    expect(res.json()['@odata.context']).toContain('applePushNotificationCertificate(topicIdentifier,status,daysUntilExpiration)/$entity');
    expect((await h.t.request({ method: 'GET', url: `${PATH}?$select=nope` })).statusCode).toBe(400);
  });

  it('never puts keys or certificates in responses or audit events', async () => {
    const ready = await h.apple.requireReadyPushCertificate(h.t.store.db, h.t.tenantId);
    const keyBody = ready.keyPem.split('\n')[5]!;
    const certBody = ready.certificatePem.split('\n')[3]!;
    const events = (await h.t.request({ method: 'GET', url: `/beta/deviceManagement/auditEvents?$filter=category eq 'Enrollment'&$top=999` })).json().value;
    expect(events.length).toBeGreaterThanOrEqual(6);
    const activities = new Set(events.map((e: { activity: string }) => e.activity));
    for (const a of ['Generate Apple MDM push certificate signing request', 'Upload Apple MDM push certificate', 'Renew Apple MDM push certificate', 'Patch Apple MDM push certificate']) {
      expect(activities).toContain(a);
    }
    const all = JSON.stringify(events) + JSON.stringify(await h.get());
    for (const secret of ['PRIVATE KEY', 'BEGIN CERTIFICATE', keyBody, certBody]) expect(all).not.toContain(secret);
  });
});

describe('push certificate status, alerts and the enrollment gate over time', () => {
  let h: Harness;
  let notAfter: Date;
  beforeAll(async () => {
    h = await harness();
    const csr = await h.generate();
    const issued = await h.issue(csr);
    notAfter = issued.notAfter;
    expect((await h.upload({ appleIdentifier: 'it@contoso.com', certificate: issued.pem })).statusCode).toBe(200);
  });
  afterAll(async () => h.t.close());
  const atOffset = (ms: number) => h.clock.set(notAfter.getTime() + ms);

  it('shows the status at each boundary, and the gate follows it', async () => {
    const cases: [number, string, number][] = [
      [-31 * DAY, 'active', 31],
      [-30 * DAY - 1, 'active', 31],
      [-30 * DAY, 'expiringSoon', 30],
      [0, 'expiringSoon', 0],
      [1, 'expiredInGracePeriod', -1],
      [30 * DAY, 'expiredInGracePeriod', -30],
      [30 * DAY + 1, 'expired', -31],
      [31 * DAY, 'expired', -31],
    ];
    for (const [offset, status, days] of cases) {
      atOffset(offset);
      const e = await h.get();
      expect({ offset, status: e.status, days: e.daysUntilExpiration }).toEqual({ offset, status, days });
    }
    // Valid (even expiring soon): enrollment may start.
    atOffset(0);
    expect((await h.apple.requireReadyPushCertificate(h.t.store.db, h.t.tenantId, h.clock.now())).topic).toMatch(/^com\.apple\.mgmt\.External\./);
    // In the grace period: blocked, with the expiry and the end of the grace period stated.
    atOffset(1);
    const grace = await gateError(h);
    expect(grace).toMatchObject({ statusCode: 409, code: 'PushCertificateExpired' });
    expect(grace.message).toContain(`expired on ${notAfter.toISOString()}`);
    expect(grace.message).toContain(`before the grace period ends on ${new Date(notAfter.getTime() + 30 * DAY).toISOString()}`);
    expect(grace.message).toContain('it@contoso.com');
    atOffset(31 * DAY);
    const expired = await gateError(h);
    expect(expired).toMatchObject({ statusCode: 409, code: 'PushCertificateExpired' });
    expect(expired.message).toMatch(/grace period ended on .*every Apple device must re-enroll/);
  });

  it('runs a daily job that logs the renewal alert with a stable message', async () => {
    const job = await h.t.store.db.selectFrom('jobs').selectAll().where('tenant_id', '=', h.t.tenantId).where('kind', '=', EXPIRY_CHECK_JOB).executeTakeFirstOrThrow();
    expect(job.interval_ms).toBe(DAY);
    expect(job.dedupe_key).toBe(EXPIRY_CHECK_JOB);
    const warn = vi.spyOn(h.t.app.core.logger, 'warn');
    try {
      // Active: the job runs and stays quiet.
      atOffset(-100 * DAY);
      await h.t.store.db.updateTable('jobs').set({ run_at: h.clock.now().toISOString() }).where('id', '=', job.id).execute();
      await h.t.app.core.jobs.drain();
      expect(warn.mock.calls.filter((c) => c[1] === EXPIRY_ALERT_MESSAGE)).toEqual([]);
      // In the last 30 days: the next day's run alerts.
      atOffset(-20 * DAY);
      await h.t.app.core.jobs.drain();
      const alerts = warn.mock.calls.filter((c) => c[1] === EXPIRY_ALERT_MESSAGE);
      expect(alerts).toHaveLength(1);
      expect(alerts[0]![0]).toEqual({
        pushCertificateAlert: expect.objectContaining({ tenantId: h.t.tenantId, status: 'expiringSoon', daysUntilExpiration: 20, expirationDateTime: notAfter.toISOString() }),
      });
      const after = await h.t.store.db.selectFrom('jobs').selectAll().where('id', '=', job.id).executeTakeFirstOrThrow();
      expect(after.status).toBe('pending');
      expect(new Date(after.run_at).getTime()).toBe(h.clock.now().getTime() + DAY);
    } finally {
      warn.mockRestore();
    }
  });

  it('allows renewal during the grace period, which lifts the block', async () => {
    atOffset(10 * DAY);
    expect((await h.get()).status).toBe('expiredInGracePeriod');
    const current = await h.get();
    const csr = await h.generate();
    const renewed = await h.issue(csr, { uuid: current.subjectId as string });
    const res = await h.upload({ appleIdentifier: 'it@contoso.com', certificate: renewed.pem });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ status: 'active', daysUntilExpiration: 365 });
    expect((await h.apple.requireReadyPushCertificate(h.t.store.db, h.t.tenantId, h.clock.now())).topic).toBe(current.topicIdentifier);
  });

  it('DELETE removes the certificate, keys and job: 204, notConfigured, enrollment blocked', async () => {
    const del = await h.t.request({ method: 'DELETE', url: PATH });
    expect(del.statusCode).toBe(204);
    expect(await h.get()).toMatchObject({ status: 'notConfigured', id: null, topicIdentifier: null });
    expect((await gateError(h)).code).toBe('PushCertificateRequired');
    expect(await h.t.store.db.selectFrom('secrets').select('id').where('tenant_id', '=', h.t.tenantId).where('kind', '=', 'applePushCertificateKey').execute()).toEqual([]);
    expect(await h.t.store.db.selectFrom('jobs').select('id').where('tenant_id', '=', h.t.tenantId).where('kind', '=', EXPIRY_CHECK_JOB).execute()).toEqual([]);
    const audit = (await h.t.request({ method: 'GET', url: `/beta/deviceManagement/auditEvents?$filter=activity eq 'Delete Apple MDM push certificate'` })).json().value;
    expect(audit).toHaveLength(1);
    expect((await h.t.request({ method: 'DELETE', url: PATH })).statusCode).toBe(204);
    // A certificate can't be uploaded without a request of ours.
    const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const orphan = await applePushCertificate(appleCa, publicKey.export({ type: 'spki', format: 'pem' }).toString(), { notBefore: h.clock.now() });
    const res = await h.upload({ appleIdentifier: 'it@contoso.com', certificate: orphan.cert.pem });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/no certificate signing request from OpenEnroll is pending/);
    const noCert = await h.upload({ appleIdentifier: 'it@contoso.com' });
    expect(noCert.json().error).toMatchObject({ target: 'certificate', message: expect.stringMatching(/is required/) });
  });
});

describe('push certificate access', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(async () => h.t.close());

  it('keeps tenants apart', async () => {
    const a = await h.issue(await h.generate());
    expect((await h.upload({ appleIdentifier: 'a@tenant-a.com', certificate: a.pem })).statusCode).toBe(200);
    const b = await h.t.createTenant('Tenant B');
    const bView = await h.get(b.adminKey);
    expect(bView).toMatchObject({ status: 'notConfigured', topicIdentifier: null });
    expect(JSON.stringify(bView)).not.toContain(a.topic);
    expect((await gateError(h, b.tenantId)).code).toBe('PushCertificateRequired');
    // B can't adopt A's certificate: it answers A's request, not B's.
    await h.generate(b.adminKey);
    const res = await h.upload({ appleIdentifier: 'b@tenant-b.com', certificate: a.pem }, b.adminKey);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.target).toBe('certificate');
    // B deleting its own doesn't touch A's.
    expect((await h.t.request({ method: 'DELETE', url: PATH, key: b.adminKey })).statusCode).toBe(204);
    expect((await h.get()).topicIdentifier).toBe(a.topic);
    expect((await h.apple.requireReadyPushCertificate(h.t.store.db, h.t.tenantId)).topic).toBe(a.topic);
  });

  it('lets readers read; writes need an unscoped principal with enrollment.write', async () => {
    const readOnly = await h.t.createKey('readOnlyOperator');
    const scoped = await h.t.createKey('scopedAdministrator', ['0']);
    for (const key of [readOnly, scoped]) {
      expect((await h.t.request({ method: 'GET', url: PATH, key })).statusCode).toBe(200);
      for (const [method, url] of [
        ['PATCH', PATH],
        ['DELETE', PATH],
        ['POST', GENERATE],
      ] as const) {
        const res = await h.t.request({ method, url, key, ...(method === 'PATCH' ? { payload: { appleIdentifier: 'x@y.com' } } : {}) });
        expect(res.statusCode, `${method} ${url}`).toBe(403);
        expect(res.json().error.code).toBe('Forbidden');
      }
    }
    // Downloading the pending request is a read; generating one when none is pending is not.
    await h.generate();
    const pending = await h.t.request({ method: 'GET', url: DOWNLOAD, key: readOnly });
    expect(pending.statusCode).toBe(200);
    expect(pending.json().value).toMatch(/BEGIN CERTIFICATE REQUEST/);
    const c = await h.issue(pending.json().value);
    expect((await h.upload({ appleIdentifier: 'a@tenant-a.com', certificate: c.pem })).statusCode).toBe(409); // another topic than A's
    const current = await h.get();
    const renewal = await h.issue(pending.json().value, { uuid: current.subjectId as string });
    expect((await h.upload({ appleIdentifier: 'a@tenant-a.com', certificate: renewal.pem })).statusCode).toBe(200);
    const none = await h.t.request({ method: 'GET', url: DOWNLOAD, key: readOnly });
    expect(none.statusCode).toBe(403);
    expect(none.json().error.message).toMatch(/No certificate signing request is pending/);
    expect((await h.t.request({ method: 'GET', url: PATH, key: null })).statusCode).toBe(401);
  });
});

describe('vendor-signed push certificate requests', () => {
  const tmp = tempDir();
  let vendor: TestIdentity;
  let wwdr: TestIdentity;
  let root: TestIdentity;
  let h: Harness;
  beforeAll(async () => {
    root = await testCa('Apple Root CA (test)');
    wwdr = await testLeaf(root, { CN: 'Apple Worldwide Developer Relations Certification Authority (test)' }, { isCa: true });
    vendor = await testLeaf(wwdr, { CN: 'MDM Vendor: OpenEnroll Test', O: 'OpenEnroll' });
    h = await harness({
      // The vendor certificate as Apple hands it out: DER (.cer).
      OPENENROLL_MDM_VENDOR_CERT_FILE: tmp.file('mdm.cer', vendor.cert.der),
      OPENENROLL_MDM_VENDOR_KEY_FILE: tmp.file('mdm.key', vendor.keyPem),
      OPENENROLL_MDM_VENDOR_CHAIN_FILE: tmp.file('chain.pem', wwdr.cert.pem + root.cert.pem),
    });
  });
  afterAll(async () => {
    await h?.t.close();
    tmp.cleanup();
  });

  it('returns base64 of the plist Apple wants, signed by the vendor key', async () => {
    const value = await h.generate();
    const xml = Buffer.from(value, 'base64').toString('utf8');
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<!DOCTYPE plist/);
    const req = plist.parse(xml) as Record<string, string>;
    expect(Object.keys(req).sort()).toEqual(['PushCertCertificateChain', 'PushCertRequestCSR', 'PushCertSignature']);
    const csrDer = Buffer.from(req.PushCertRequestCSR!, 'base64');
    const csr = await parseCsr(csrDer);
    expect(csr.subject.text).toBe('CN=OpenEnroll MDM Push, O=Default');
    expect(pemBlocks(req.PushCertCertificateChain!).map((b) => parseCertificate(b.der).subject.text)).toEqual([
      'CN=MDM Vendor: OpenEnroll Test, O=OpenEnroll',
      'CN=Apple Worldwide Developer Relations Certification Authority (test)',
      'CN=Apple Root CA (test), O=OpenEnroll Tests',
    ]);
    const vendorKey = crypto.createPublicKey(vendor.cert.pem);
    expect(crypto.verify('sha256', csrDer, { key: vendorKey, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.from(req.PushCertSignature!, 'base64'))).toBe(true);
    expect(crypto.verify('sha256', Buffer.concat([csrDer, Buffer.from([0])]), vendorKey, Buffer.from(req.PushCertSignature!, 'base64'))).toBe(false);
    // openssl agrees.
    openssl(['dgst', '-sha256', '-verify', tmp.file('vendor.pub', vendor.cert.publicKeyPem), '-signature', tmp.file('sig.bin', Buffer.from(req.PushCertSignature!, 'base64')), tmp.file('csr.der', csrDer)]);

    // The download function returns the same signed request, and Apple's answer to it uploads.
    expect((await h.t.request({ method: 'GET', url: DOWNLOAD })).json().value).toBe(value);
    const issued = await h.issue(csr.pem);
    expect((await h.upload({ appleIdentifier: 'admin@contoso.com', certificate: issued.pem })).json().status).toBe('active');
  });

  it('refuses to start with a vendor key that does not match the certificate, or half a configuration', async () => {
    const other = await testLeaf(wwdr, { CN: 'other' });
    const config = loadConfig({
      LOG_LEVEL: 'silent',
      OPENENROLL_JOBS: 'false',
      OPENENROLL_MDM_VENDOR_CERT_FILE: tmp.file('mdm2.cer', vendor.cert.der),
      OPENENROLL_MDM_VENDOR_KEY_FILE: tmp.file('other.key', other.keyPem),
    });
    const store = createStore({ sqliteFile: ':memory:' });
    try {
      await expect(buildApp({ config, store, keyring: testKeyring() })).rejects.toThrow(/MDM vendor certificate.*doesn't match/);
    } finally {
      await store.close();
    }
    expect(() => loadConfig({ OPENENROLL_MDM_VENDOR_CERT_FILE: 'x.cer' })).toThrow(/must be set together/);
  });
});
