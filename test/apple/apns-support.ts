import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import type { Insertable } from 'kysely';
import pino, { type Logger } from 'pino';
import { expect } from 'vitest';
import { ApnsClient, ApnsPushNotifier, type ApnsClientOptions, type ApnsNotifierDeps } from '../../src/apple/apns/index.js';
import type { AppleModule } from '../../src/apple/module.js';
import { parseCsr } from '../../src/pki/certificates.js';
import { HOUR, ManualClock } from '../../src/shared/time.js';
import type { Store } from '../../src/store/db.js';
import type { MdmCommandQueueTable, MdmEnrollmentsTable } from '../../src/store/schema.js';
import { startApnsSimulator, type ApnsSimulator, type ApnsSimulatorOptions } from '../../sim/apns/index.js';
import { applePushCa } from '../helpers/apple.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { applePushCertificate, tempDir } from '../pki/fixtures.js';

export const PUSH_CERT_PATH = '/beta/deviceManagement/applePushNotificationCertificate';

export interface Enrolled {
  id: string;
  token: string;
  pushMagic: string;
}

export interface InstalledCertificate {
  topic: string;
  uuid: string;
  serial: string;
  notAfter: Date;
}

export interface ApnsHarness {
  t: TestApp;
  sim: ApnsSimulator;
  clock: ManualClock;
  apple: AppleModule;
  /** The tenant's push certificate, uploaded (or renewed with the same topic) through the admin API. */
  cert: InstalledCertificate;
  installCertificate(opts?: { uuid?: string; tenant?: { tenantId: string; adminKey: string } }): Promise<InstalledCertificate>;
  enroll(count: number, opts?: Partial<Insertable<MdmEnrollmentsTable>> & { tenantId?: string }): Promise<Enrolled[]>;
  queueCommand(enrollmentIds: readonly string[], opts?: { tenantId?: string; status?: string }): Promise<string>;
  queueRows(commandUuid: string): Promise<Array<Pick<MdmCommandQueueTable, 'enrollment_id' | 'push_sent_at' | 'status'>>>;
  enrollment(id: string): Promise<MdmEnrollmentsTable>;
  /** A second "node": its own notifier and HTTP/2 client on the same store. */
  node(opts?: { client?: Partial<ApnsClientOptions>; notifier?: Partial<ApnsNotifierDeps>; logger?: Logger }): ApnsPushNotifier;
  close(): Promise<void>;
}

/** A pino logger that keeps what it logs (level info and up). */
export function capturedLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

/**
 * An app whose APNs URL is the simulator (trusted through OPENENROLL_APNS_CA_FILE) and whose tenant
 * has a push certificate from the test "Apple" CA, which the simulator trusts for client certificates.
 * The clock starts an hour behind real time so certificates are valid for real TLS.
 */
export async function apnsHarness(opts: { sim?: Partial<ApnsSimulatorOptions> } = {}): Promise<ApnsHarness> {
  const clock = new ManualClock(Date.now() - HOUR);
  const appleCa = await applePushCa();
  const sim = await startApnsSimulator({ caCertPem: appleCa.cert.pem, clock, ...opts.sim });
  const tmp = tempDir('openenroll-apns-');
  const t = await createTestApp({ clock, env: { OPENENROLL_APNS_URL: sim.url, OPENENROLL_APNS_CA_FILE: tmp.file('apns-ca.pem', sim.caPem) } });
  const apple = t.app.modules.find((m) => m.name === 'apple') as AppleModule;
  const nodes: ApnsPushNotifier[] = [];

  const installCertificate: ApnsHarness['installCertificate'] = async (o = {}) => {
    const key = o.tenant ? { key: o.tenant.adminKey } : {};
    const csr = await t.request({ method: 'POST', url: `${PUSH_CERT_PATH}/generateApplePushNotificationCertificateSigningRequest`, ...key });
    expect(csr.statusCode, csr.body).toBe(200);
    const { publicKeySpki } = await parseCsr(csr.json().value as string);
    const issued = await applePushCertificate(appleCa, publicKeySpki, { notBefore: clock.now(), ...(o.uuid ? { uuid: o.uuid } : {}) });
    const res = await t.request({ method: 'PATCH', url: PUSH_CERT_PATH, payload: { appleIdentifier: 'mdm-admins@contoso.com', certificate: issued.cert.pem }, ...key });
    expect(res.statusCode, res.body).toBe(200);
    return { topic: issued.topic, uuid: issued.uuid, serial: issued.cert.serialNumberHex, notAfter: issued.cert.notAfter };
  };

  const h: ApnsHarness = {
    t,
    sim,
    clock,
    apple,
    cert: await installCertificate(),
    installCertificate,
    async enroll(count, o = {}) {
      const { tenantId = t.tenantId, ...columns } = o;
      const now = clock.now().toISOString();
      const out: Enrolled[] = [];
      const rows: Array<Insertable<MdmEnrollmentsTable>> = [];
      for (let i = 0; i < count; i++) {
        const e = { id: crypto.randomUUID(), token: crypto.randomBytes(32).toString('hex'), pushMagic: crypto.randomUUID().toUpperCase() };
        out.push(e);
        // Only the columns a pushable enrollment needs; the MDM core's other columns keep their defaults.
        rows.push({
          id: e.id,
          tenant_id: tenantId,
          type: 'Device',
          udid: crypto.randomUUID().toUpperCase(),
          topic: h.cert.topic,
          push_token: e.token,
          push_magic: e.pushMagic,
          enabled: 1,
          created_at: now,
          updated_at: now,
          ...columns,
        } as Insertable<MdmEnrollmentsTable>);
      }
      for (let i = 0; i < rows.length; i += 500) await t.store.db.insertInto('mdm_enrollments').values(rows.slice(i, i + 500)).execute();
      return out;
    },
    async queueCommand(ids, o = {}) {
      const tenantId = o.tenantId ?? t.tenantId;
      const uuid = crypto.randomUUID().toUpperCase();
      const now = clock.now().toISOString();
      await t.store.db
        .insertInto('mdm_commands')
        .values({ uuid, tenant_id: tenantId, request_type: 'DeviceInformation', command_plist: '<plist/>', source: 'system', created_by: null, created_at: now })
        .execute();
      const rows = ids.map((id) => ({ tenant_id: tenantId, enrollment_id: id, command_uuid: uuid, status: o.status ?? 'queued', queued_at: now }) as Insertable<MdmCommandQueueTable>);
      for (let i = 0; i < rows.length; i += 500) await t.store.db.insertInto('mdm_command_queue').values(rows.slice(i, i + 500)).execute();
      return uuid;
    },
    queueRows: (uuid) => t.store.db.selectFrom('mdm_command_queue').select(['enrollment_id', 'push_sent_at', 'status']).where('command_uuid', '=', uuid).execute(),
    async enrollment(id) {
      return (await t.store.db.selectFrom('mdm_enrollments').selectAll().where('id', '=', id).executeTakeFirstOrThrow()) as MdmEnrollmentsTable;
    },
    node(o = {}) {
      const logger = o.logger ?? pino({ level: 'silent' });
      const client = new ApnsClient({ baseUrl: sim.url, extraCaPem: sim.caPem, logger, ...o.client });
      const n = new ApnsPushNotifier({
        store: t.store as Store,
        clock,
        logger,
        client,
        pushCertificate: (db, tenantId, now) => apple.requireReadyPushCertificate(db, tenantId, now),
        ...o.notifier,
      });
      nodes.push(n);
      return n;
    },
    async close() {
      for (const n of nodes) await n.close();
      await t.close();
      await sim.close();
      tmp.cleanup();
    },
  };
  return h;
}

/** Lets pending I/O callbacks (a subscriber's delivery, a connection closing) run. */
export const settle = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));
