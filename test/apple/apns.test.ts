import crypto from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApnsClient, APNS_UNREGISTERED, clearApnsUnregistered, type ApnsCredentials, type ApnsRequest, type ApnsTransportError, type PushSummary } from '../../src/apple/apns/index.js';
import { parseCertificate } from '../../src/pki/certificates.js';
import { DAY, MINUTE } from '../../src/shared/time.js';
import { apnsHarness, capturedLogger, settle, type ApnsHarness } from './apns-support.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function counts(s: PushSummary) {
  return { sent: s.sent, unregistered: s.unregistered, failed: s.failed, notSent: s.notSent, skipped: s.skipped, certificateProblem: s.certificateProblem };
}

const NONE_SKIPPED = { notPushable: 0, unregistered: 0, topicMismatch: 0, alreadyPushed: 0 };

describe('APNs push through the app module', () => {
  let h: ApnsHarness;
  beforeAll(async () => {
    h = await apnsHarness();
  });
  afterAll(async () => h.close());

  it('sends the MDM push Apple expects: path, headers, body, topic and the push certificate as client certificate', async () => {
    const [e] = await h.enroll(1);
    const woken: unknown[] = [];
    const unsubscribe = h.sim.subscribe(e!.token, (n) => woken.push(n));
    const summary = await h.apple.apns.notify(h.t.tenantId, [e!.id]);
    expect(counts(summary)).toEqual({ sent: 1, unregistered: 0, failed: 0, notSent: 0, skipped: NONE_SKIPPED, certificateProblem: null });
    const [p] = h.sim.delivered(e!.token);
    expect(p).toMatchObject({
      token: e!.token,
      topic: h.cert.topic,
      certificateTopic: h.cert.topic,
      certificateSerial: h.cert.serial,
      pushType: 'mdm',
      priority: '10',
      body: JSON.stringify({ mdm: e!.pushMagic }),
      pushMagic: e!.pushMagic,
      status: 200,
    });
    expect(p!.headers['apns-id']).toMatch(UUID);
    expect(p!.headers['content-type']).toBe('application/json');
    // Seven days for APNs to keep trying an offline device.
    expect(Number(p!.expiration)).toBe(Math.floor((h.clock.now().getTime() + 7 * DAY) / 1000));
    await settle();
    expect(woken).toEqual([expect.objectContaining({ token: e!.token, pushMagic: e!.pushMagic, topic: h.cert.topic })]);
    unsubscribe();
  });

  it('accepts the push contract of the MDM core (push resolves to nothing and never throws)', async () => {
    const [e] = await h.enroll(1);
    await expect(h.apple.apns.push(h.t.tenantId, [e!.id])).resolves.toBeUndefined();
    expect(h.sim.delivered(e!.token)).toHaveLength(1);
    // Ids that aren't enrollments are skipped, not errors.
    await expect(h.apple.apns.push(h.t.tenantId, ['nope', ''])).resolves.toBeUndefined();
  });

  it('pushes only enabled enrollments with a token and push magic, on the certificate topic, of the calling tenant', async () => {
    const [ok] = await h.enroll(1);
    const [disabled] = await h.enroll(1, { enabled: 0 });
    const [noToken] = await h.enroll(1, { push_token: null });
    const [noMagic] = await h.enroll(1, { push_magic: null });
    const [badToken] = await h.enroll(1, { push_token: 'abcd' });
    const [gone] = await h.enroll(1, { apns_status: APNS_UNREGISTERED });
    const [otherTopic] = await h.enroll(1, { topic: 'com.apple.mgmt.External.00000000-0000-0000-0000-000000000000' });
    const other = await h.t.createTenant('Elsewhere');
    const [foreign] = await h.enroll(1, { tenantId: other.tenantId });
    const before = h.sim.pushes.length;
    const summary = await h.apple.apns.notify(h.t.tenantId, [ok!.id, ok!.id, disabled!.id, noToken!.id, noMagic!.id, badToken!.id, gone!.id, otherTopic!.id, foreign!.id, 'missing']);
    expect(summary.requested).toBe(9);
    expect(counts(summary)).toEqual({
      sent: 1,
      unregistered: 0,
      failed: 0,
      notSent: 0,
      skipped: { notPushable: 6, unregistered: 1, topicMismatch: 1, alreadyPushed: 0 },
      certificateProblem: null,
    });
    expect(h.sim.pushes.slice(before).map((p) => p.token)).toEqual([ok!.token]);
  });

  it('accepts a token stored as base64 (the plist data) as well as hex', async () => {
    const [e] = await h.enroll(1);
    await h.t.store.db.updateTable('mdm_enrollments').set({ push_token: Buffer.from(e!.token, 'hex').toString('base64') }).where('id', '=', e!.id).execute();
    expect((await h.apple.apns.notify(h.t.tenantId, [e!.id])).sent).toBe(1);
    expect(h.sim.delivered(e!.token)).toHaveLength(1);
  });

  it('reuses one HTTP/2 connection for many pushes', async () => {
    const enrolled = await h.enroll(40);
    const before = h.sim.stats.totalConnections;
    const summary = await h.apple.apns.notify(
      h.t.tenantId,
      enrolled.map((e) => e.id),
    );
    expect(summary.sent).toBe(40);
    expect(h.sim.stats.totalConnections).toBe(before);
    expect(h.sim.stats.connections).toBe(1);
  });

  it('wakes managed devices (syncDevice) and every enrollment of the tenant (pushAll)', async () => {
    const [device] = await h.enroll(1, { managed_device_id: 'md-1' });
    const [user] = await h.enroll(1, { managed_device_id: 'md-1', type: 'User' });
    const byDevice = await h.apple.apns.pushManagedDevices(h.t.tenantId, ['md-1', 'md-unknown']);
    expect(byDevice.sent).toBe(1);
    expect(h.sim.delivered(device!.token)).toHaveLength(1);
    expect(h.sim.delivered(user!.token)).toHaveLength(0);

    const all = await h.t.store.db.selectFrom('mdm_enrollments').select('id').where('tenant_id', '=', h.t.tenantId).where('enabled', '=', 1).where('apns_status', 'is', null).where('push_token', 'is not', null).execute();
    const summary = await h.apple.apns.pushAll(h.t.tenantId);
    expect(summary.requested).toBe(all.length);
    expect(summary.sent + summary.skipped.notPushable + summary.skipped.topicMismatch).toBe(all.length);
    expect(h.sim.delivered(user!.token)).toHaveLength(1);
  });

  it('reconnects after APNs sends GOAWAY', async () => {
    const [a, b] = await h.enroll(2);
    expect((await h.apple.apns.notify(h.t.tenantId, [a!.id])).sent).toBe(1);
    const before = h.sim.stats.totalConnections;
    h.sim.goAway('Shutdown');
    await settle(50);
    expect((await h.apple.apns.notify(h.t.tenantId, [b!.id])).sent).toBe(1);
    expect(h.sim.stats.totalConnections).toBe(before + 1);
  });

  it('renewing the push certificate (PATCH, same topic, new key) switches pushes to it without a restart', async () => {
    const [a, b, c] = await h.enroll(3);
    expect((await h.apple.apns.notify(h.t.tenantId, [a!.id])).sent).toBe(1);
    const old = h.cert;
    expect(h.sim.delivered(a!.token)[0]!.certificateSerial).toBe(old.serial);

    // A push in flight on the old certificate while the renewal lands.
    h.sim.failNext({ token: b!.token, delayMs: 300 });
    const inFlight = h.apple.apns.notify(h.t.tenantId, [b!.id]);
    await settle(50);
    h.cert = await h.installCertificate({ uuid: old.uuid });
    expect(h.cert.topic).toBe(old.topic);
    expect(h.cert.serial).not.toBe(old.serial);

    expect((await h.apple.apns.notify(h.t.tenantId, [c!.id])).sent).toBe(1);
    expect((await inFlight).sent).toBe(1);
    expect(h.sim.delivered(b!.token)[0]!.certificateSerial).toBe(old.serial);
    expect(h.sim.delivered(c!.token)[0]!.certificateSerial).toBe(h.cert.serial);
    expect(h.sim.clientCertificateSerials().slice(-2)).toEqual([old.serial, h.cert.serial]);
    // The old connection closes once its push is done; only the new one stays.
    await settle(100);
    expect(h.sim.stats.connections).toBe(1);
  });

  it('stops at once without a usable certificate, saying why, and pushes again once it is renewed', async () => {
    const [e] = await h.enroll(1);
    const other = await h.t.createTenant('No certificate');
    const [stranger] = await h.enroll(1, { tenantId: other.tenantId });
    const before = h.sim.pushes.length;
    const none = await h.apple.apns.notify(other.tenantId, [stranger!.id]);
    expect(counts(none)).toMatchObject({ sent: 0, notSent: 1, certificateProblem: 'PushCertificateRequired' });

    h.clock.set(h.cert.notAfter.getTime() + 1000);
    const expired = await h.apple.apns.notify(h.t.tenantId, [e!.id]);
    expect(counts(expired)).toMatchObject({ sent: 0, notSent: 1, certificateProblem: 'PushCertificateExpired' });
    expect(h.sim.pushes.length).toBe(before);

    h.clock.set(Date.now() - 60 * MINUTE);
    h.cert = await h.installCertificate({ uuid: h.cert.uuid });
    expect((await h.apple.apns.notify(h.t.tenantId, [e!.id])).sent).toBe(1);
  });
});

// Its own app: two PostgreSQL test stores can't migrate side by side (Kysely's migrator sees the other schema's tables).
describe('APNs on shutdown', () => {
  it('closes its HTTP/2 sessions when the app stops', async () => {
    const h = await apnsHarness();
    try {
      const [e] = await h.enroll(1);
      expect((await h.apple.apns.notify(h.t.tenantId, [e!.id])).sent).toBe(1);
      expect(h.sim.stats.connections).toBe(1);
      await h.t.app.close();
      await settle(50);
      expect(h.sim.stats.connections).toBe(0);
    } finally {
      await h.close();
    }
  });
});

describe('APNs retries', () => {
  let h: ApnsHarness;
  beforeAll(async () => {
    h = await apnsHarness();
  });
  afterAll(async () => h.close());

  function node(extra: { maxAttempts?: number; maxDelayMs?: number; requestTimeoutMs?: number } = {}) {
    const sleeps: number[] = [];
    const n = h.node({
      client: extra.requestTimeoutMs ? { requestTimeoutMs: extra.requestTimeoutMs } : {},
      notifier: {
        retry: { maxAttempts: extra.maxAttempts ?? 4, baseDelayMs: 100, maxDelayMs: extra.maxDelayMs ?? 1000 },
        random: () => 0.5,
        sleep: async (ms) => {
          sleeps.push(ms);
        },
      },
    });
    return { n, sleeps };
  }

  it('retries 429, 500 and 503 with exponential backoff and then succeeds', async () => {
    const { n, sleeps } = node();
    const [e] = await h.enroll(1);
    h.sim.failNext({ token: e!.token, status: 429 });
    h.sim.failNext({ token: e!.token, status: 503 });
    h.sim.failNext({ token: e!.token, status: 500 });
    const summary = await n.notify(h.t.tenantId, [e!.id]);
    expect(summary.sent).toBe(1);
    expect(h.sim.pushes.filter((p) => p.token === e!.token).map((p) => [p.status, p.reason])).toEqual([
      [429, 'TooManyRequests'],
      [503, 'ServiceUnavailable'],
      [500, 'InternalServerError'],
      [200, null],
    ]);
    // 100, 200, 400 with "equal jitter" at 0.5: three quarters of each.
    expect(sleeps).toEqual([75, 150, 300]);
    // The same apns-id across attempts, so APNs and our logs name one notification.
    expect(new Set(h.sim.pushes.filter((p) => p.token === e!.token).map((p) => p.apnsId)).size).toBe(1);
  });

  it('gives up after the bounded number of attempts', async () => {
    const { n, sleeps } = node({ maxAttempts: 3 });
    const [e] = await h.enroll(1);
    h.sim.failNext({ token: e!.token, status: 503, times: Infinity });
    try {
      const summary = await n.notify(h.t.tenantId, [e!.id]);
      expect(counts(summary)).toMatchObject({ sent: 0, failed: 1, unregistered: 0 });
      expect(h.sim.pushes.filter((p) => p.token === e!.token)).toHaveLength(3);
      expect(sleeps).toHaveLength(2);
    } finally {
      h.sim.clearFaults();
    }
  });

  it("honours Retry-After, and gives up when it's longer than we wait", async () => {
    const { n, sleeps } = node({ maxDelayMs: 5000 });
    const [a, b] = await h.enroll(2);
    h.sim.failNext({ token: a!.token, status: 429, retryAfterSeconds: 3 });
    expect((await n.notify(h.t.tenantId, [a!.id])).sent).toBe(1);
    expect(sleeps).toEqual([3000]);
    h.sim.failNext({ token: b!.token, status: 503, retryAfterSeconds: 6 });
    expect((await n.notify(h.t.tenantId, [b!.id])).failed).toBe(1);
    expect(h.sim.pushes.filter((p) => p.token === b!.token)).toHaveLength(1);
    expect(sleeps).toEqual([3000]);
  });

  it('retries a push APNs never answered (timeout) on the same connection', async () => {
    const { n, sleeps } = node({ requestTimeoutMs: 200 });
    const [e] = await h.enroll(1);
    h.sim.failNext({ token: e!.token, hang: true });
    expect((await n.notify(h.t.tenantId, [e!.id])).sent).toBe(1);
    expect(sleeps).toHaveLength(1);
  });

  it("doesn't retry a request APNs refuses as malformed", async () => {
    const { n, sleeps } = node();
    const [e] = await h.enroll(1);
    h.sim.failNext({ token: e!.token, status: 400, reason: 'BadPriority' });
    expect(counts(await n.notify(h.t.tenantId, [e!.id]))).toMatchObject({ failed: 1, unregistered: 0 });
    expect(sleeps).toEqual([]);
    expect((await h.enrollment(e!.id)).apns_status).toBeNull();
  });

  it('keeps the HTTP/2 stream limit', async () => {
    const n = h.node({ client: { maxConcurrentStreams: 4 } });
    const enrolled = await h.enroll(24);
    h.sim.reset();
    h.sim.failNext({ delayMs: 30, times: Infinity });
    try {
      const summary = await n.notify(
        h.t.tenantId,
        enrolled.map((e) => e.id),
      );
      expect(summary.sent).toBe(24);
      expect(h.sim.stats.maxInFlight).toBe(4);
    } finally {
      h.sim.clearFaults();
    }
  });
});

describe('APNs Unregistered devices', () => {
  let h: ApnsHarness;
  beforeAll(async () => {
    h = await apnsHarness();
  });
  afterAll(async () => h.close());

  it('marks an enrollment APNs answers 410 Unregistered, and never pushes it again until a new TokenUpdate', async () => {
    const [e, other] = await h.enroll(2);
    h.sim.unregister(e!.token, new Date('2026-01-02T03:04:05.000Z'));
    const summary = await h.apple.apns.notify(h.t.tenantId, [e!.id, other!.id]);
    expect(counts(summary)).toMatchObject({ sent: 1, unregistered: 1, failed: 0 });
    const row = await h.enrollment(e!.id);
    expect(row.apns_status).toBe(APNS_UNREGISTERED);
    expect(row.apns_status_at).toBe(h.clock.now().toISOString());
    expect((await h.enrollment(other!.id)).apns_status).toBeNull();

    const before = h.sim.pushes.length;
    const again = await h.apple.apns.notify(h.t.tenantId, [e!.id]);
    expect(counts(again)).toMatchObject({ sent: 0, skipped: { ...NONE_SKIPPED, unregistered: 1 } });
    expect(h.sim.pushes.length).toBe(before);

    // The device comes back with a new token (the MDM core's TokenUpdate clears the mark).
    const token = 'ab'.repeat(32);
    await h.t.store.transaction(async (trx) => {
      await trx.updateTable('mdm_enrollments').set({ push_token: token }).where('id', '=', e!.id).execute();
      await clearApnsUnregistered(trx, h.t.tenantId, e!.id);
    });
    expect((await h.apple.apns.notify(h.t.tenantId, [e!.id])).sent).toBe(1);
    expect(h.sim.delivered(token)).toHaveLength(1);
  });

  it('marks 400 BadDeviceToken the same way', async () => {
    const [e] = await h.enroll(1);
    h.sim.failNext({ token: e!.token, status: 400, reason: 'BadDeviceToken' });
    expect((await h.apple.apns.notify(h.t.tenantId, [e!.id])).unregistered).toBe(1);
    expect((await h.enrollment(e!.id)).apns_status).toBe(APNS_UNREGISTERED);
  });

  it("doesn't mark a device whose TokenUpdate replaced the token while the push was in flight", async () => {
    const [e] = await h.enroll(1);
    h.sim.failNext({ token: e!.token, status: 410, delayMs: 150 });
    const pushing = h.apple.apns.notify(h.t.tenantId, [e!.id]);
    await settle(50);
    await h.t.store.db.updateTable('mdm_enrollments').set({ push_token: 'cd'.repeat(32) }).where('id', '=', e!.id).execute();
    expect((await pushing).unregistered).toBe(1);
    expect((await h.enrollment(e!.id)).apns_status).toBeNull();
  });
});

describe('APNs refusing the push certificate', () => {
  let h: ApnsHarness;
  beforeAll(async () => {
    h = await apnsHarness();
  });
  afterAll(async () => h.close());

  it('stops on 403 BadCertificate without a retry loop, logs it for the tenant, and resumes with a renewed certificate', async () => {
    const { logger, lines } = capturedLogger();
    const sleeps: number[] = [];
    const n = h.node({ logger, client: { maxConcurrentStreams: 1 }, notifier: { sleep: async (ms) => void sleeps.push(ms) } });
    const enrolled = await h.enroll(5);
    const ids = enrolled.map((e) => e.id);
    const command = await h.queueCommand(ids);
    h.sim.revokeCertificate(h.cert.serial);
    const before = h.sim.pushes.length;

    const summary = await n.notify(h.t.tenantId, ids, { commandUuid: command });
    expect(counts(summary)).toMatchObject({ sent: 0, failed: 0, unregistered: 0, notSent: 5, certificateProblem: 'BadCertificate' });
    // One request found out; the rest of the batch never left.
    expect(h.sim.pushes.slice(before).map((p) => [p.status, p.reason])).toEqual([[403, 'BadCertificate']]);
    expect(sleeps).toEqual([]);
    const alerts = lines.filter((l) => l.level === 50 && String(l.msg).includes('APNs refused the Apple MDM push certificate (BadCertificate)'));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ tenantId: h.t.tenantId, reason: 'BadCertificate', topic: h.cert.topic, certificateSerial: h.cert.serial });
    // Nothing counts as pushed for the command.
    expect((await h.queueRows(command)).every((r) => r.push_sent_at === null)).toBe(true);
    // No device is blamed.
    for (const id of ids) expect((await h.enrollment(id)).apns_status).toBeNull();

    // Pushes with the same certificate don't go out for a while …
    const blocked = await n.notify(h.t.tenantId, ids, { commandUuid: command });
    expect(blocked).toMatchObject({ notSent: 5, certificateProblem: 'BadCertificate' });
    h.clock.advance(14 * MINUTE);
    await n.notify(h.t.tenantId, ids);
    expect(h.sim.pushes.length).toBe(before + 1);
    // … then one batch probes again.
    h.clock.advance(MINUTE);
    expect((await n.notify(h.t.tenantId, ids)).certificateProblem).toBe('BadCertificate');
    expect(h.sim.pushes.length).toBe(before + 2);

    // A renewal (new serial, same topic) ends the block at once.
    h.cert = await h.installCertificate({ uuid: h.cert.uuid });
    const resumed = await n.notify(h.t.tenantId, ids, { commandUuid: command });
    expect(counts(resumed)).toMatchObject({ sent: 5, notSent: 0, certificateProblem: null });
    expect(new Set(h.sim.delivered().slice(-5).map((p) => p.certificateSerial))).toEqual(new Set([h.cert.serial]));
  });

  it('treats 403 BadCertificateEnvironment and 400 TopicDisallowed as certificate problems too', async () => {
    for (const [status, reason] of [
      [403, 'BadCertificateEnvironment'],
      [403, 'Forbidden'],
      [400, 'TopicDisallowed'],
    ] as const) {
      const n = h.node({ notifier: { sleep: async () => undefined } });
      const [e] = await h.enroll(1);
      h.sim.failNext({ token: e!.token, status, reason });
      const summary = await n.notify(h.t.tenantId, [e!.id]);
      expect(summary, reason).toMatchObject({ sent: 0, notSent: 1, certificateProblem: reason });
      expect(h.sim.pushes.filter((p) => p.token === e!.token)).toHaveLength(1);
    }
  });
});

describe('APNs push once per command', () => {
  let h: ApnsHarness;
  beforeAll(async () => {
    h = await apnsHarness();
  });
  afterAll(async () => h.close());

  it('never pushes the same command twice to an enrollment, even when two nodes race', async () => {
    const a = h.node();
    const b = h.node();
    const enrolled = await h.enroll(60);
    const ids = enrolled.map((e) => e.id);
    const command = await h.queueCommand(ids);
    h.sim.reset();

    const [sa, sb] = await Promise.all([a.notify(h.t.tenantId, ids, { commandUuid: command }), b.notify(h.t.tenantId, [...ids].reverse(), { commandUuid: command })]);
    expect(sa.sent + sb.sent).toBe(60);
    expect(sa.skipped.alreadyPushed + sb.skipped.alreadyPushed).toBe(60);
    const delivered = h.sim.delivered();
    expect(delivered).toHaveLength(60);
    expect(new Set(delivered.map((p) => p.token)).size).toBe(60);
    const rows = await h.queueRows(command);
    expect(rows.every((r) => r.push_sent_at !== null)).toBe(true);

    // A third try (either node, or the app's) sends nothing.
    const third = await h.apple.apns.notify(h.t.tenantId, ids, { commandUuid: command });
    expect(third).toMatchObject({ sent: 0, skipped: { alreadyPushed: 60 } });
    expect(h.sim.delivered()).toHaveLength(60);

    // Another command is pushed again.
    const next = await h.queueCommand(ids.slice(0, 3));
    expect((await a.notify(h.t.tenantId, ids, { commandUuid: next })).sent).toBe(3);
  });

  it('lets a command be pushed again when its push failed, and skips rows the device already fetched', async () => {
    const n = h.node({ notifier: { retry: { maxAttempts: 2 }, sleep: async () => undefined } });
    const [failing, fetched, fine] = await h.enroll(3);
    const command = await h.queueCommand([failing!.id, fine!.id]);
    await h.t.store.db
      .insertInto('mdm_command_queue')
      .values({ tenant_id: h.t.tenantId, enrollment_id: fetched!.id, command_uuid: command, status: 'sent', queued_at: h.clock.now().toISOString() } as never)
      .execute();
    h.sim.failNext({ token: failing!.token, status: 503, times: 2 });
    const first = await n.notify(h.t.tenantId, [failing!.id, fetched!.id, fine!.id], { commandUuid: command });
    expect(first).toMatchObject({ sent: 1, failed: 1, skipped: { alreadyPushed: 1 } });
    const rows = new Map((await h.queueRows(command)).map((r) => [r.enrollment_id, r.push_sent_at]));
    expect(rows.get(failing!.id)).toBeNull();
    expect(rows.get(fine!.id)).not.toBeNull();
    expect(rows.get(fetched!.id)).toBeNull();

    const second = await n.notify(h.t.tenantId, [failing!.id, fetched!.id, fine!.id], { commandUuid: command });
    expect(second).toMatchObject({ sent: 1, skipped: { alreadyPushed: 2 } });
    expect(h.sim.delivered(failing!.token)).toHaveLength(1);
    expect(h.sim.delivered(fine!.token)).toHaveLength(1);
    expect(h.sim.delivered(fetched!.token)).toHaveLength(0);
  });

  it("ignores another tenant's command rows", async () => {
    const other = await h.t.createTenant('Other tenant');
    const [e] = await h.enroll(1, { tenantId: other.tenantId });
    const command = await h.queueCommand([e!.id], { tenantId: other.tenantId });
    const summary = await h.apple.apns.notify(h.t.tenantId, [e!.id], { commandUuid: command });
    expect(summary).toMatchObject({ sent: 0, skipped: { notPushable: 1 } });
    expect((await h.queueRows(command))[0]!.push_sent_at).toBeNull();
  });
});

describe('APNs client sessions across a renewal', () => {
  let h: ApnsHarness;
  beforeAll(async () => {
    h = await apnsHarness();
  });
  afterAll(async () => h.close());

  async function credentials(): Promise<ApnsCredentials> {
    const ready = await h.apple.requireReadyPushCertificate(h.t.store.db, h.t.tenantId, h.clock.now());
    const info = parseCertificate(ready.certificatePem);
    return { tenantId: h.t.tenantId, ...ready, thumbprint: info.sha256Thumbprint, serialNumberHex: info.serialNumberHex, notBefore: info.notBefore.getTime() };
  }

  const request = (token: string): ApnsRequest => ({ token, topic: h.cert.topic, body: '{"mdm":"M"}', expiration: '0', priority: '10', apnsId: crypto.randomUUID() });

  it('finishes the pushes queued on the old certificate, serves a batch that read it before the renewal, and keeps the new one current', async () => {
    const client = new ApnsClient({ baseUrl: h.sim.url, extraCaPem: h.sim.caPem, logger: pino({ level: 'silent' }), maxConcurrentStreams: 1 });
    try {
      const old = await credentials();
      const tokens = Array.from({ length: 5 }, () => crypto.randomBytes(32).toString('hex'));
      h.sim.failNext({ delayMs: 40, times: 5 });
      // Five pushes on the old certificate, one stream at a time: four wait in the queue …
      const queued = tokens.map((tk) => client.send(old, request(tk)));
      await settle(20);
      // … while the renewal lands and a push on the new certificate goes out.
      h.clock.advance(1000);
      h.cert = await h.installCertificate({ uuid: h.cert.uuid });
      const renewed = await credentials();
      expect(renewed.notBefore).toBeGreaterThan(old.notBefore);
      expect((await client.send(renewed, request(tokens[0]!))).status).toBe(200);
      expect((await Promise.all(queued)).map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      for (const tk of tokens) expect(h.sim.delivered(tk)[0]!.certificateSerial).toBe(old.serialNumberHex);
      expect(h.sim.delivered(tokens[0]!)[1]!.certificateSerial).toBe(renewed.serialNumberHex);
      await settle(50);
      expect(client.sessionInfo()).toEqual([expect.objectContaining({ serialNumberHex: renewed.serialNumberHex, draining: false })]);

      // A batch that read the certificate before the renewal still pushes with it, without retiring the new session.
      const connections = h.sim.stats.totalConnections;
      expect((await client.send(old, request(tokens[1]!))).status).toBe(200);
      expect(h.sim.delivered(tokens[1]!).at(-1)!.certificateSerial).toBe(old.serialNumberHex);
      await settle(50);
      expect(client.sessionInfo()).toEqual([expect.objectContaining({ serialNumberHex: renewed.serialNumberHex, draining: false })]);
      expect((await client.send(renewed, request(tokens[2]!))).status).toBe(200);
      // One connection for the stale batch; the new certificate's connection was kept.
      expect(h.sim.stats.totalConnections).toBe(connections + 1);
    } finally {
      await client.close();
    }
  });

  it('fails pushes still queued when the client shuts down, without sending them', async () => {
    const client = new ApnsClient({ baseUrl: h.sim.url, extraCaPem: h.sim.caPem, logger: pino({ level: 'silent' }), maxConcurrentStreams: 1 });
    const creds = await credentials();
    h.sim.failNext({ delayMs: 100 });
    const tokens = Array.from({ length: 3 }, () => crypto.randomBytes(32).toString('hex'));
    const sends = tokens.map((tk) => client.send(creds, request(tk)).then((r) => r.status, (e: ApnsTransportError) => e.reason));
    await settle(30);
    await client.close();
    expect(await Promise.all(sends)).toEqual([200, 'SessionClosed', 'SessionClosed']);
    await expect(client.send(creds, request(tokens[0]!))).rejects.toMatchObject({ reason: 'SessionClosed' });
  });
});
