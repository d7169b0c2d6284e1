import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import { GraphError } from '../../graph/errors.js';
import type { Metrics } from '../../observability/metrics.js';
import { parseCertificate } from '../../pki/certificates.js';
import type { Clock } from '../../shared/time.js';
import { DAY, MINUTE } from '../../shared/time.js';
import type { Executor, Store } from '../../store/db.js';
import type { PushNotifier, PushReason } from '../mdm/contracts.js';
import type { InFlight } from '../../shared/concurrency.js';
import type { ReadyPushCertificate } from '../push-certificate/index.js';
import { ApnsTransportError, type ApnsClient, type ApnsCredentials } from './client.js';
import {
  apnsExpiration,
  classifyApnsResponse,
  DEFAULT_APNS_RETRY_POLICY,
  deviceTokenHex,
  mdmPushBody,
  retryAfterMs,
  retryDelayMs,
  type ApnsRetryPolicy,
  type ApnsVerdict,
} from './rules.js';

/** mdm_enrollments.apns_status of a device APNs said is gone (410, BadDeviceToken, DeviceTokenNotForTopic). */
export const APNS_UNREGISTERED = 'unregistered';

/** What one push call did; also logged. */
export interface PushSummary {
  tenantId: string;
  commandUuid: string | null;
  /** Distinct enrollment ids asked for. */
  requested: number;
  /** APNs accepted the push (200). */
  sent: number;
  /** Newly marked unregistered by this call. */
  unregistered: number;
  /** Gave up: retries exhausted, or APNs refused the request itself. */
  failed: number;
  /** Not sent because the tenant's certificate is missing, expired or refused. */
  notSent: number;
  skipped: {
    /** Unknown, disabled, or without token/push magic (not enrolled yet or checked out). */
    notPushable: number;
    /** Marked unregistered earlier; waits for a new TokenUpdate. */
    unregistered: number;
    /** Bound to another topic than the tenant's certificate: this certificate can't reach it. */
    topicMismatch: number;
    /** With a command: pushed already (by this or another node), delivered, or not queued for it. */
    alreadyPushed: number;
  };
  /** Set when the tenant's certificate stopped the push (PushCertificateRequired, PushCertificateExpired, BadCertificate …). */
  certificateProblem: string | null;
  durationMs: number;
}

export interface ApnsNotifierDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  client: ApnsClient;
  /** The tenant's push certificate, or a GraphError (409) saying why there is none usable. */
  pushCertificate(db: Executor, tenantId: string, now: Date): Promise<ReadyPushCertificate>;
  metrics?: Metrics | undefined;
  retry?: Partial<ApnsRetryPolicy>;
  /** How long APNs keeps trying to deliver a push to an offline device; default 7 days. */
  expirationMs?: number;
  /** After APNs refuses the certificate, pushes with it stop for this long (a renewal ends it at once); default 15 minutes. */
  certificateBlockMs?: number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * Device requests in progress on this node. Pushes go out in waves, and a wave waits while
   * `pushBacklog` or more are in progress: a fan-out then wakes devices about as fast as they are
   * served, instead of all at once into connection and database-pool timeouts.
   */
  deviceLoad?: Pick<InFlight, 'below'>;
  /** In-progress device requests at which pushes wait (OPENENROLL_APNS_PUSH_BACKLOG); 0 or absent: no pacing. */
  pushBacklog?: number;
}

/** The push side of Apple MDM, beyond the contract the MDM core uses. */
export interface ApnsNotifier extends PushNotifier {
  /** push() with its summary. */
  notify(tenantId: string, enrollmentIds: readonly string[], reason?: PushReason): Promise<PushSummary>;
  /** Wakes every pushable enrollment of the tenant (admin "sync all", after a restore). */
  pushAll(tenantId: string): Promise<PushSummary>;
  /** Wakes the device channels of managed devices (admin syncDevice). */
  pushManagedDevices(tenantId: string, managedDeviceIds: readonly string[]): Promise<PushSummary>;
  close(): Promise<void>;
}

interface Target {
  enrollmentId: string;
  /** As stored: the 410 mark is conditional on it, so a TokenUpdate racing the push wins. */
  storedToken: string;
  token: string;
  pushMagic: string;
}

type Outcome = 'sent' | 'unregistered' | 'failed' | 'notSent';

const CHUNK = 500;
/** Pushes claimed and sent together, between two looks at the device load. */
const PUSH_WAVE = 64;
/** Pause between waves when pacing, so the devices of one wave have connected before the load is read again. */
const WAVE_GAP_MS = 20;
const DEVICE_CHANNELS = ['Device', 'UserEnrollmentDevice'];

/**
 * Wakes enrolled Apple devices through APNs. push() and notify() never throw: device and APNs
 * errors become the summary; store failures are logged and reported as not sent.
 */
export class ApnsPushNotifier implements ApnsNotifier {
  private readonly retry: ApnsRetryPolicy;
  private readonly expirationMs: number;
  private readonly blockMs: number;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly backlog: number;
  /** Per tenant: the certificate APNs refused, why, and until when we don't try it again. */
  private readonly blocks = new Map<string, { thumbprint: string; reason: string; until: number }>();
  /** Parsed certificates by PEM, so a push batch costs a string compare, not a parse. */
  private readonly certCache = new Map<string, { pem: string; thumbprint: string; serialNumberHex: string; notBefore: number }>();
  /** Last "no usable certificate" log per tenant, so a flood of pushes logs it once in a while. */
  private readonly problemLogged = new Map<string, { code: string; at: number }>();
  private readonly counter: Counter<'result'> | undefined;

  constructor(private readonly deps: ApnsNotifierDeps) {
    this.retry = { ...DEFAULT_APNS_RETRY_POLICY, ...deps.retry };
    this.expirationMs = deps.expirationMs ?? 7 * DAY;
    this.blockMs = deps.certificateBlockMs ?? 15 * MINUTE;
    this.random = deps.random ?? Math.random;
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.backlog = deps.pushBacklog ?? 0;
    this.counter = deps.metrics
      ? new Counter({
          name: 'openenroll_apns_pushes_total',
          help: 'APNs MDM pushes by result (sent, unregistered, failed, notSent, retry)',
          labelNames: ['result'],
          registers: [deps.metrics.registry],
        })
      : undefined;
  }

  async push(tenantId: string, enrollmentIds: readonly string[], reason?: PushReason): Promise<void> {
    await this.notify(tenantId, enrollmentIds, reason);
  }

  async notify(tenantId: string, enrollmentIds: readonly string[], reason: PushReason = {}): Promise<PushSummary> {
    const started = performance.now();
    const ids = [...new Set(enrollmentIds)];
    const { commandUuid, signal } = reason;
    const summary = emptySummary(tenantId, commandUuid ?? null, ids.length);
    const done = (): PushSummary => {
      summary.durationMs = Math.round(performance.now() - started);
      const notable = summary.failed > 0 || summary.unregistered > 0 || summary.certificateProblem !== null;
      if (ids.length > 0) this.deps.logger[notable ? 'info' : 'debug']({ apnsPush: summary }, 'APNs push finished');
      return summary;
    };
    if (ids.length === 0) return done();
    try {
      const creds = await this.credentials(tenantId);
      const problem = typeof creds === 'string' ? creds : this.blocked(creds);
      if (typeof creds === 'string' || problem !== null) {
        summary.certificateProblem = problem;
        summary.notSent = ids.length;
        this.counter?.inc({ result: 'notSent' }, ids.length);
        return done();
      }
      const targets = await this.loadTargets(tenantId, ids, creds.topic, summary);
      const waves = chunks(targets, PUSH_WAVE);
      for (let i = 0; i < waves.length; i++) {
        if (i > 0) await this.pace(signal);
        // Stopped (lease lost, shutdown) or the certificate refused: the rest is not sent; with a command, it stays unclaimed for the next run.
        if (signal?.aborted || summary.certificateProblem !== null) {
          const rest = waves.slice(i).reduce((n, w) => n + w.length, 0);
          summary.notSent += rest;
          this.counter?.inc({ result: 'notSent' }, rest);
          break;
        }
        await this.sendWave(creds, waves[i]!, commandUuid, summary);
      }
    } catch (err) {
      this.deps.logger.error({ err, tenantId, commandUuid }, 'APNs push failed');
      summary.notSent = ids.length - summary.sent - summary.unregistered - summary.failed - sumSkipped(summary);
    }
    return done();
  }

  /** Waits, between two waves, until this node serves fewer than `pushBacklog` device requests. */
  private async pace(signal: AbortSignal | undefined): Promise<void> {
    if (this.backlog <= 0 || !this.deps.deviceLoad) return;
    await this.sleep(WAVE_GAP_MS);
    await this.deps.deviceLoad.below(this.backlog, signal);
  }

  /** One wave: with a command, claimed first (so two nodes never both push a row) and released again where APNs didn't take it. */
  private async sendWave(creds: ApnsCredentials, wave: Target[], commandUuid: string | undefined, summary: PushSummary): Promise<void> {
    if (!commandUuid) {
      await this.sendAll(creds, wave, summary);
      return;
    }
    const { tenantId } = creds;
    const claimedAt = this.deps.clock.now().toISOString();
    const claimed = await this.claim(tenantId, commandUuid, wave, claimedAt);
    summary.skipped.alreadyPushed += wave.length - claimed.size;
    const mine = wave.filter((t) => claimed.has(t.enrollmentId));
    let outcomes: Outcome[] = [];
    try {
      outcomes = await this.sendAll(creds, mine, summary);
    } finally {
      // Only a push APNs took counts: the others may be pushed again for this command later.
      await this.unclaim(
        tenantId,
        commandUuid,
        mine.filter((_, i) => outcomes[i] !== 'sent').map((t) => t.enrollmentId),
        claimedAt,
      );
    }
  }

  async pushAll(tenantId: string): Promise<PushSummary> {
    const rows = await this.deps.store.db
      .selectFrom('mdm_enrollments')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('enabled', '=', 1)
      .where('push_token', 'is not', null)
      .where('apns_status', 'is', null)
      .execute();
    return this.notify(
      tenantId,
      rows.map((r) => r.id),
    );
  }

  async pushManagedDevices(tenantId: string, managedDeviceIds: readonly string[]): Promise<PushSummary> {
    const ids: string[] = [];
    for (const chunk of chunks([...new Set(managedDeviceIds)], CHUNK)) {
      const rows = await this.deps.store.db
        .selectFrom('mdm_enrollments')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('managed_device_id', 'in', chunk)
        .where('type', 'in', DEVICE_CHANNELS)
        .execute();
      ids.push(...rows.map((r) => r.id));
    }
    return this.notify(tenantId, ids);
  }

  async close(): Promise<void> {
    await this.deps.client.close();
  }

  /** The certificate as session credentials, or the reason there is none usable. */
  private async credentials(tenantId: string): Promise<ApnsCredentials | string> {
    let ready: ReadyPushCertificate;
    try {
      ready = await this.deps.pushCertificate(this.deps.store.db, tenantId, this.deps.clock.now());
    } catch (err) {
      if (!(err instanceof GraphError)) throw err;
      this.logProblem(tenantId, err.code, `Apple devices can't be pushed: ${err.message}`);
      this.deps.client.forget(tenantId);
      return err.code;
    }
    let cached = this.certCache.get(tenantId);
    if (cached?.pem !== ready.certificatePem) {
      const info = parseCertificate(ready.certificatePem);
      cached = { pem: ready.certificatePem, thumbprint: info.sha256Thumbprint, serialNumberHex: info.serialNumberHex, notBefore: info.notBefore.getTime() };
      this.certCache.set(tenantId, cached);
    }
    const { thumbprint, serialNumberHex, notBefore } = cached;
    return { tenantId, topic: ready.topic, certificatePem: ready.certificatePem, keyPem: ready.keyPem, thumbprint, serialNumberHex, notBefore };
  }

  /** Why this certificate isn't tried now (APNs refused it recently), or null. */
  private blocked(creds: ApnsCredentials): string | null {
    const block = this.blocks.get(creds.tenantId);
    return block && block.thumbprint === creds.thumbprint && this.deps.clock.now().getTime() < block.until ? block.reason : null;
  }

  private logProblem(tenantId: string, code: string, message: string): void {
    const last = this.problemLogged.get(tenantId);
    const now = Date.now();
    if (last && last.code === code && now - last.at < 10 * MINUTE) return;
    this.problemLogged.set(tenantId, { code, at: now });
    this.deps.logger.error({ tenantId, code }, message);
  }

  private async loadTargets(tenantId: string, ids: string[], topic: string, summary: PushSummary): Promise<Target[]> {
    const targets: Target[] = [];
    let found = 0;
    for (const chunk of chunks(ids, CHUNK)) {
      const rows = await this.deps.store.db
        .selectFrom('mdm_enrollments')
        .select(['id', 'enabled', 'push_token', 'push_magic', 'topic', 'apns_status'])
        .where('tenant_id', '=', tenantId)
        .where('id', 'in', chunk)
        .execute();
      found += rows.length;
      for (const r of rows) {
        const token = deviceTokenHex(r.push_token);
        if (r.enabled !== 1 || !token || !r.push_magic) summary.skipped.notPushable++;
        else if (r.apns_status === APNS_UNREGISTERED) summary.skipped.unregistered++;
        else if (r.topic && r.topic !== topic) summary.skipped.topicMismatch++;
        else targets.push({ enrollmentId: r.id, storedToken: r.push_token!, token, pushMagic: r.push_magic });
      }
    }
    summary.skipped.notPushable += ids.length - found;
    if (summary.skipped.topicMismatch > 0) {
      this.deps.logger.warn({ tenantId, count: summary.skipped.topicMismatch, topic }, "enrollments bound to another push topic can't be pushed with this certificate");
    }
    return targets;
  }

  /** Takes the right to push this command to these enrollments: one UPDATE per chunk, so two nodes never both win a row. */
  private async claim(tenantId: string, commandUuid: string, targets: Target[], claimedAt: string): Promise<Set<string>> {
    const claimed = new Set<string>();
    for (const chunk of chunks(
      targets.map((t) => t.enrollmentId),
      CHUNK,
    )) {
      const rows = await this.deps.store.db
        .updateTable('mdm_command_queue')
        .set({ push_sent_at: claimedAt })
        .where('tenant_id', '=', tenantId)
        .where('command_uuid', '=', commandUuid)
        .where('enrollment_id', 'in', chunk)
        .where('status', '=', 'queued')
        .where('push_sent_at', 'is', null)
        .returning('enrollment_id')
        .execute();
      for (const r of rows) claimed.add(r.enrollment_id);
    }
    return claimed;
  }

  private async unclaim(tenantId: string, commandUuid: string, enrollmentIds: string[], claimedAt: string): Promise<void> {
    for (const chunk of chunks(enrollmentIds, CHUNK)) {
      await this.deps.store.db
        .updateTable('mdm_command_queue')
        .set({ push_sent_at: null })
        .where('tenant_id', '=', tenantId)
        .where('command_uuid', '=', commandUuid)
        .where('enrollment_id', 'in', chunk)
        .where('push_sent_at', '=', claimedAt)
        .execute();
    }
  }

  private async sendAll(creds: ApnsCredentials, targets: Target[], summary: PushSummary): Promise<Outcome[]> {
    // A refused certificate aborts the rest of the batch: slots waiting or backing off give up at once.
    const stop = new AbortController();
    const stopped = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
    const expiration = apnsExpiration(this.deps.clock.now(), this.expirationMs);
    const outcomes = await Promise.all(
      targets.map((t) =>
        this.sendOne(creds, t, expiration, stop, stopped).catch((err: unknown): Outcome => {
          this.deps.logger.error({ err, tenantId: creds.tenantId, enrollmentId: t.enrollmentId }, 'APNs push failed');
          return 'failed';
        }),
      ),
    );
    for (const o of outcomes) {
      summary[o]++;
      this.counter?.inc({ result: o });
    }
    if (stop.signal.aborted) summary.certificateProblem = String(stop.signal.reason);
    return outcomes;
  }

  private async sendOne(creds: ApnsCredentials, t: Target, expiration: string, stop: AbortController, stopped: Promise<void>): Promise<Outcome> {
    const apnsId = crypto.randomUUID();
    const req = { token: t.token, topic: creds.topic, body: mdmPushBody(t.pushMagic), expiration, priority: '10' as const, apnsId };
    for (let attempt = 1; ; attempt++) {
      if (stop.signal.aborted) return 'notSent';
      let verdict: ApnsVerdict;
      let retryAfter: number | undefined;
      try {
        const res = await this.deps.client.send(creds, req, stop.signal);
        verdict = classifyApnsResponse(res.status, res.reason);
        retryAfter = retryAfterMs(res.retryAfter, this.deps.clock.now());
        if (verdict.kind === 'unregistered') {
          await this.markUnregistered(creds.tenantId, t, verdict.reason, res.timestamp);
          return 'unregistered';
        }
      } catch (err) {
        if (stop.signal.aborted) return 'notSent';
        if (!(err instanceof ApnsTransportError)) throw err;
        verdict = err.certificateRefused ? { kind: 'certificate', reason: err.reason } : { kind: 'retry', reason: err.reason };
      }
      switch (verdict.kind) {
        case 'sent':
          return 'sent';
        case 'certificate':
          this.refuseCertificate(creds, verdict.reason, stop);
          return 'notSent';
        case 'rejected':
          this.deps.logger.warn({ tenantId: creds.tenantId, enrollmentId: t.enrollmentId, apnsId, reason: verdict.reason }, 'APNs refused the push request');
          return 'failed';
        case 'retry': {
          const delay = retryDelayMs(this.retry, attempt, retryAfter, this.random());
          if (delay === undefined) {
            this.deps.logger.warn({ tenantId: creds.tenantId, enrollmentId: t.enrollmentId, apnsId, reason: verdict.reason, attempts: attempt }, 'APNs push gave up after retries');
            return 'failed';
          }
          this.counter?.inc({ result: 'retry' });
          await Promise.race([this.sleep(delay), stopped]);
        }
      }
    }
  }

  private refuseCertificate(creds: ApnsCredentials, reason: string, stop: AbortController): void {
    if (stop.signal.aborted) return;
    stop.abort(reason);
    this.blocks.set(creds.tenantId, { thumbprint: creds.thumbprint, reason, until: this.deps.clock.now().getTime() + this.blockMs });
    this.deps.client.forget(creds.tenantId);
    this.deps.logger.error(
      { tenantId: creds.tenantId, reason, topic: creds.topic, certificateSerial: creds.serialNumberHex },
      `APNs refused the Apple MDM push certificate (${reason}): pushes for this tenant are stopped. ` +
        `Renew or replace the push certificate (same topic) in the Apple Push Certificates Portal; pushes resume with the new certificate, or are tried again in ${Math.round(this.blockMs / MINUTE)} minutes.`,
    );
  }

  /** Marks the enrollment unregistered unless a TokenUpdate replaced the token meanwhile. */
  private async markUnregistered(tenantId: string, t: Target, reason: string, appleTimestamp: number | undefined): Promise<void> {
    await this.deps.store.db
      .updateTable('mdm_enrollments')
      .set({ apns_status: APNS_UNREGISTERED, apns_status_at: this.deps.clock.now().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', t.enrollmentId)
      .where('push_token', '=', t.storedToken)
      .execute();
    this.deps.logger.info(
      { tenantId, enrollmentId: t.enrollmentId, reason, unregisteredAt: appleTimestamp ? new Date(appleTimestamp).toISOString() : undefined },
      'APNs says the device token is no longer valid; no pushes until the device sends a new TokenUpdate',
    );
  }
}

/**
 * For the MDM core's TokenUpdate: a new token makes the device pushable again. Call it in the
 * transaction that stores the token (or set the same two columns there).
 */
export async function clearApnsUnregistered(db: Executor, tenantId: string, enrollmentId: string): Promise<void> {
  await db.updateTable('mdm_enrollments').set({ apns_status: null, apns_status_at: null }).where('tenant_id', '=', tenantId).where('id', '=', enrollmentId).execute();
}

function emptySummary(tenantId: string, commandUuid: string | null, requested: number): PushSummary {
  return {
    tenantId,
    commandUuid,
    requested,
    sent: 0,
    unregistered: 0,
    failed: 0,
    notSent: 0,
    skipped: { notPushable: 0, unregistered: 0, topicMismatch: 0, alreadyPushed: 0 },
    certificateProblem: null,
    durationMs: 0,
  };
}

function sumSkipped(s: PushSummary): number {
  return s.skipped.notPushable + s.skipped.unregistered + s.skipped.topicMismatch + s.skipped.alreadyPushed;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
