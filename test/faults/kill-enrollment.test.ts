import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/db.js';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { createAppleDevice, deviceOptionsFor, type AppleDevice } from '../../sim/apple-device/index.js';
import { httpCall, uploadPushCertificate, uploadTokenThroughApi, type ApiCall } from '../apple/ade-sync-support.js';
import { createDeployment, ensureBuilt, startServe, TOKEN, type Deployment, type Server } from '../cli/helpers.js';
import { deviceCa, IOS_PROFILE, TOKENS } from '../helpers/apple-device.js';
import { pgUrl, testDialect } from '../helpers/store.js';
import { selfSignedTlsFiles } from '../helpers/tls.js';
import { tempDir } from '../pki/fixtures.js';
import { openDeploymentStore, startTlsFront, until, type TlsFront } from './support.js';

/**
 * The real server, killed with SIGKILL while ADE devices are enrolling (MachineInfo, profile,
 * SCEP, Authenticate, TokenUpdate from the strict device simulator, over TLS). After the restart
 * nothing is half-written — a managed device exists exactly when its ADE device reads Enrolled,
 * its enrollment is complete and its first commands are queued — and every device that didn't
 * finish enrolls on a second try, once. On PostgreSQL a second case stops the enrollment's final
 * transaction at its last write (a lock the test holds) and kills the server there.
 */

const DEVICES = 6;

describe('SIGKILL during enrollments', () => {
  let files: ReturnType<typeof tempDir>;
  let abm: AbmSimulator;
  let front: TlsFront;
  let deployment: Deployment;
  let server: Server | undefined;
  let store: Store | undefined;
  let env: Record<string, string>;
  let call: ApiCall;
  let tlsCertPem: string;
  let serials: string[] = [];

  async function serve(): Promise<void> {
    server = await startServe(env);
    front.setTarget(server.port);
    const key = server.stdout().match(TOKEN)?.[0];
    if (key) call = httpCall(server.url, key);
  }

  async function kill(): Promise<void> {
    server!.proc.kill('SIGKILL');
    await server!.exited;
    server = undefined;
  }

  const device = async (serial: string, udid?: string): Promise<AppleDevice> =>
    createAppleDevice(deviceOptionsFor(abm.device(serial)!, { deviceCa: await deviceCa(), trustAnchors: [tlsCertPem], ...(udid ? { udid } : {}) }));

  /** What the store holds for a serial, and whether it is whole. */
  async function stateOf(serial: string): Promise<{ enrolled: boolean; problems: string[] }> {
    const db = store!.db;
    const problems: string[] = [];
    const managed = await db.selectFrom('managed_devices').selectAll().where('serial_number', '=', serial).execute();
    const dep = await db.selectFrom('dep_devices').selectAll().where('serial_number', '=', serial).executeTakeFirstOrThrow();
    if (managed.length > 1) problems.push(`${managed.length} managed devices`);
    const md = managed[0];
    if (md) {
      if (dep.enrollment_state !== 'enrolled' || dep.managed_device_id !== md.id) problems.push(`managed device without the ADE device enrolled (${dep.enrollment_state})`);
      const enrollment = await db.selectFrom('mdm_enrollments').selectAll().where('managed_device_id', '=', md.id).where('type', '=', 'Device').executeTakeFirst();
      if (!enrollment?.enrolled_at) problems.push('managed device without a completed enrollment');
      else {
        const queued = await db.selectFrom('mdm_command_queue').select('command_uuid').where('enrollment_id', '=', enrollment.id).execute();
        if (queued.length === 0) problems.push('enrollment completed without its first commands');
        const intent = enrollment.intent_id ? await db.selectFrom('enrollment_intents').selectAll().where('id', '=', enrollment.intent_id).executeTakeFirst() : undefined;
        if (!intent?.consumed_at) problems.push("enrollment completed but its intent wasn't consumed");
      }
    } else {
      if (dep.enrollment_state === 'enrolled' || dep.managed_device_id) problems.push('ADE device enrolled without a managed device');
      const done = await db.selectFrom('mdm_enrollments').select('id').where('serial_number', '=', serial).where('enrolled_at', 'is not', null).execute();
      if (done.length > 0) problems.push('enrollment completed without a managed device');
    }
    return { enrolled: md !== undefined, problems };
  }

  beforeAll(async () => {
    await ensureBuilt();
    files = tempDir('openenroll-faults-');
    const tls = await selfSignedTlsFiles();
    tlsCertPem = tls.certPem;
    abm = await startAbmSimulator();
    front = await startTlsFront(tls);
    deployment = await createDeployment();
    env = {
      ...deployment.env,
      OPENENROLL_PUBLIC_URL: front.url,
      OPENENROLL_APPLE_DEP_URL: abm.url,
      // No APNs here: devices check in on their own; pushes fail fast.
      OPENENROLL_APNS_URL: 'https://127.0.0.1:9',
      OPENENROLL_APPLE_DEVICE_CA_FILE: files.file('device-ca.pem', (await deviceCa()).certPem),
      OPENENROLL_PROFILE_SIGNING_CERT_FILE: tls.certFile,
      OPENENROLL_PROFILE_SIGNING_KEY_FILE: tls.keyFile,
      OPENENROLL_JOBS_LEASE_MS: '1500',
    };
    await serve();
    await uploadPushCertificate(call);
    const { tokenId } = await uploadTokenThroughApi(call, abm, 'OpenEnroll', (serverUuid) => {
      serials = Array.from({ length: DEVICES + 1 }, (_, i) => `FKL${String(i).padStart(2, '0')}X0N8HG7`);
      abm.addDevices(serials.map((serial_number) => ({ serial_number, model: 'iPhone 15', device_family: 'iPhone' })));
      abm.assignDevicesToServer(serverUuid, { serials });
    });
    await until('the first sync', async () => (await call('GET', `${TOKENS}/${tokenId}`)).json().syncStatus === 'succeeded');
    const profile = await call('POST', `${TOKENS}/${tokenId}/enrollmentProfiles`, { '@odata.type': IOS_PROFILE, displayName: 'Kill phones', requiresUserAuthentication: false });
    expect(profile.status, profile.text).toBe(201);
    expect((await call('POST', `${TOKENS}/${tokenId}/enrollmentProfiles/${profile.json().id as string}/setDefaultProfile`)).status).toBe(204);
    await until('Apple to hold the profile for every device', () => serials.every((s) => abm.device(s)?.profile_uuid)).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${server?.stdout().split('\n').filter((l) => /"level":(40|50)/.test(l)).slice(-10).join('\n')}`);
    });
    store = openDeploymentStore(deployment);
  }, 180_000);

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await store?.close();
    await front?.close();
    await abm?.close();
    await deployment?.cleanup();
    files?.cleanup();
  });

  it('leaves no half-written enrollment, and the devices that did not finish enroll on a retry', { timeout: 120_000 }, async () => {
    const group = serials.slice(0, DEVICES);
    const first = await Promise.all(group.map((s) => device(s)));
    const attempts = first.map((d) => d.enrollAdeFromCloud(abm).then(() => true, () => false));
    // Kill once some devices are enrolled while others are still on their way.
    await until('enrollments under way', async () => {
      const enrolled = Number((await store!.db.selectFrom('managed_devices').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      return enrolled >= 1 && front.inFlight() > 0;
    }, 60_000, 2);
    await kill();
    const finished = await Promise.all(attempts);

    const states = await Promise.all(group.map((s) => stateOf(s)));
    expect(states.flatMap((s, i) => s.problems.map((p) => `${group[i]}: ${p}`))).toEqual([]);
    console.log(`[faults] ${deployment.dialect}: killed with ${states.filter((s) => s.enrolled).length} of ${DEVICES} enrolled (${finished.filter(Boolean).length} devices saw success)`);

    await serve();
    // A device that didn't finish starts again (Setup Assistant retries); one that did carries on polling.
    for (const [i, serial] of group.entries()) {
      const d = finished[i] ? first[i]! : await device(serial, first[i]!.udid);
      if (!finished[i]) await d.enrollAdeFromCloud(abm);
      await d.poll();
      expect(d.enrolled).toBe(true);
    }
    const after = await Promise.all(group.map((s) => stateOf(s)));
    expect(after.flatMap((s, i) => s.problems.map((p) => `${group[i]}: ${p}`))).toEqual([]);
    expect(after.every((s) => s.enrolled)).toBe(true);
    for (const d of first) d.close();
  });

  it.skipIf(testDialect() !== 'postgres')('a kill inside the final transaction leaves nothing of it (PostgreSQL)', { timeout: 60_000 }, async () => {
    if (!server) await serve();
    const serial = serials[DEVICES]!;
    const d = await device(serial);
    // The device's TokenUpdate waits at the front while the test locks the command queue (the
    // transaction's last write): the server then stops there, the rest of the transaction done.
    const held = front.hold((body) => body.includes('TokenUpdate') && body.includes(d.udid));
    const attempt = d.enrollAdeFromCloud(abm).then(() => true, () => false);
    await held.arrived;
    const locker = new pg.Client({ connectionString: pgUrl() });
    const watcher = new pg.Client({ connectionString: pgUrl() });
    await locker.connect();
    await watcher.connect();
    const lockerPid = ((await locker.query('select pg_backend_pid() as pid')).rows[0] as { pid: number }).pid;
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${deployment.pgSchema}".mdm_command_queue IN EXCLUSIVE MODE`);
      held.release();
      // Activity is read outside the locking transaction (a transaction sees one snapshot of it).
      await until('the server to wait for the lock', async () => {
        const res = await watcher.query(`select 1 from pg_stat_activity where wait_event_type = 'Lock' and query ilike '%mdm_command_queue%' and pid <> $1`, [lockerPid]);
        return res.rowCount! > 0;
      });
      await kill();
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
      await watcher.end();
    }
    expect(await attempt).toBe(false);
    // The managed device, gate success, ADE state and enrollment were written before the lock: none of it stayed.
    expect(await stateOf(serial)).toEqual({ enrolled: false, problems: [] });

    await serve();
    const again = await device(serial, d.udid);
    await again.enrollAdeFromCloud(abm);
    await again.poll();
    expect(await stateOf(serial)).toEqual({ enrolled: true, problems: [] });
    d.close();
    again.close();
  });
});

