import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceChange } from '../../src/devices/events.js';
import { GraphError } from '../../src/graph/errors.js';
import { MINUTE } from '../../src/shared/time.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { createTag, deviceRecords, enroll, manualClock, serial } from './fixtures.js';

describe('DeviceRecords.upsert (enrollment)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  const auditFor = (resourceId: string) =>
    t.store.db.selectFrom('audit_events').selectAll().where('tenant_id', '=', t.tenantId).where('resource_id', '=', resourceId).orderBy('activity_date_time').execute();

  it('creates a device with enrollment and sync times, a generated name and the Default tag', async () => {
    const now = t.clock.now().toISOString();
    const { device, created, row } = await enroll(t, {
      serialNumber: serial(),
      deviceName: 'iPad',
      deviceType: 'iPad',
      operatingSystem: 'iPadOS',
      userPrincipalName: 'adele@contoso.com',
      deviceEnrollmentType: 'appleBulkWithUser',
      managedDeviceOwnerType: 'company',
      isSupervised: true,
    });
    expect(created).toBe(true);
    expect(device.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(device).toMatchObject({
      enrolledDateTime: now,
      lastSyncDateTime: now,
      roleScopeTagIds: ['0'],
      isSupervised: true,
      isEncrypted: false,
      managementState: 'managed',
      managementAgent: 'mdm',
      complianceState: 'unknown',
      deviceRegistrationState: 'notRegistered',
      joinType: 'unknown',
      ownerType: 'company',
    });
    expect(device.managedDeviceName).toMatch(/^adele_iPad_\d+\/\d+\/\d{4}_\d+:\d{2} [AP]M$/);
    expect(row.tenant_id).toBe(t.tenantId);
  });

  it('keeps an explicitly given id, enrolledDateTime and managedDeviceName', async () => {
    const { device } = await enroll(t, { id: 'fixed-id-1', enrolledDateTime: '2025-05-05T05:05:05Z', managedDeviceName: 'Kiosk' });
    expect(device).toMatchObject({ id: 'fixed-id-1', enrolledDateTime: '2025-05-05T05:05:05.000Z', managedDeviceName: 'Kiosk' });
  });

  const identities = [
    ['id', () => ({ id: `dev-${serial()}` })],
    ['enrollmentId', () => ({ enrollmentId: `E-${serial()}` })],
    ['udid', () => ({ udid: `00008030-${serial()}` })],
    ['imei', () => ({ imei: `35${Date.now()}${Math.floor(Math.random() * 100)}` })],
    ['serialNumber', () => ({ serialNumber: serial() })],
  ] as const;

  for (const [name, make] of identities) {
    it(`updates the same device when found again by ${name}`, async () => {
      const identity = make();
      const first = await enroll(t, { ...identity, osVersion: '17.0', deviceName: 'first' });
      manualClock(t).advance(5 * MINUTE);
      const second = await enroll(t, { ...identity, osVersion: '17.1' });
      expect(second.created).toBe(false);
      expect(second.device.id).toBe(first.device.id);
      expect(second.device.osVersion).toBe('17.1');
      expect(second.device.deviceName).toBe('first'); // absent properties are left alone
      expect(second.device.enrolledDateTime).toBe(first.device.enrolledDateTime);
      expect(Date.parse(second.device.lastSyncDateTime) - Date.parse(first.device.lastSyncDateTime)).toBe(5 * MINUTE);
      const rows = await t.store.db.selectFrom('managed_devices').select('id').where('tenant_id', '=', t.tenantId).where('id', '=', first.device.id).execute();
      expect(rows).toHaveLength(1);
    });
  }

  it('prefers the most specific identity: enrollmentId over serial number', async () => {
    const s = serial();
    const a = await enroll(t, { serialNumber: s, enrollmentId: 'EA' });
    const b = await enroll(t, { serialNumber: serial(), enrollmentId: 'EB' });
    const again = await enroll(t, { serialNumber: s, enrollmentId: 'EB' });
    expect(again.device.id).toBe(b.device.id);
    expect(again.device.id).not.toBe(a.device.id);
  });

  it('never merges devices on placeholder serial numbers', async () => {
    const a = await enroll(t, { serialNumber: 'unknown', deviceName: 'a' });
    const b = await enroll(t, { serialNumber: 'unknown', deviceName: 'b' });
    expect(b.created).toBe(true);
    expect(b.device.id).not.toBe(a.device.id);
    expect(a.device.serialNumber).toBeNull();
  });

  it('finds devices only within the tenant', async () => {
    const other = await t.createTenant('Fabrikam');
    const s = serial();
    const mine = await enroll(t, { serialNumber: s });
    const theirs = await enroll(t, { serialNumber: s }, other.tenantId);
    expect(theirs.created).toBe(true);
    expect(theirs.device.id).not.toBe(mine.device.id);
    expect(theirs.row.tenant_id).toBe(other.tenantId);
    // Even addressed by id, another tenant's device isn't found or changed (ids are global keys: a clash is refused).
    await expect(enroll(t, { id: mine.device.id, deviceName: 'hijack' }, other.tenantId)).rejects.toMatchObject({ statusCode: 409 });
    const stillMine = await deviceRecords(t).findById(t.store.db, t.tenantId, mine.device.id);
    expect(stillMine).toMatchObject({ serial_number: s, device_name: null });
  });

  it('takes scope tags from the caller (e.g. an enrollment token) and keeps them when not given', async () => {
    const tag = await createTag(t, 'Enrollment token tag');
    const { device } = await enroll(t, { serialNumber: serial(), roleScopeTagIds: [tag] });
    expect(device.roleScopeTagIds).toEqual([tag]);
    const again = await enroll(t, { id: device.id, osVersion: '2' });
    expect(again.device.roleScopeTagIds).toEqual([tag]);
    const retagged = await enroll(t, { id: device.id, roleScopeTagIds: ['0', tag] });
    expect(retagged.device.roleScopeTagIds).toEqual(['0', tag]);
  });

  it('refuses unknown scope tags and invalid enum values with a 400, writing nothing', async () => {
    const s = serial();
    await expect(enroll(t, { serialNumber: s, roleScopeTagIds: ['999'] })).rejects.toMatchObject({ statusCode: 400, options: { target: 'roleScopeTagIds' } });
    await expect(enroll(t, { serialNumber: s, deviceEnrollmentType: 'bogus' as never })).rejects.toMatchObject({
      statusCode: 400,
      options: { target: 'deviceEnrollmentType' },
    });
    expect(await deviceRecords(t).findByIdentity(t.store.db, t.tenantId, { serialNumber: s })).toBeUndefined();
  });

  it('keeps only a partial phone number for personal devices', async () => {
    const { device } = await enroll(t, { serialNumber: serial(), managedDeviceOwnerType: 'personal', phoneNumber: '+1 425 555 0100' });
    expect(device.phoneNumber).toBe('*******0100');
    const corp = await enroll(t, { serialNumber: serial(), managedDeviceOwnerType: 'company', phoneNumber: '+14255550100' });
    expect(corp.device.phoneNumber).toBe('+14255550100');
  });

  it('audits creation and real changes by the system actor, but not a plain check-in', async () => {
    const { device } = await enroll(t, { serialNumber: serial(), deviceName: 'audit-me' });
    manualClock(t).advance(MINUTE);
    await enroll(t, { id: device.id }); // check-in only: lastSyncDateTime moves
    manualClock(t).advance(MINUTE);
    await enroll(t, { id: device.id, osVersion: '18.0' });
    const events = await auditFor(device.id);
    expect(events.map((e) => e.activity)).toEqual(['Create managed device', 'Update managed device']);
    expect(events[0]).toMatchObject({ category: 'Device', component_name: 'DeviceManagement', activity_operation_type: 'Create', resource_type: 'microsoft.graph.managedDevice' });
    expect(JSON.parse(events[0]!.actor)).toMatchObject({ type: 'Service', applicationDisplayName: 'OpenEnroll' });
    const changed = JSON.parse(events[1]!.resources)[0].modifiedProperties as { displayName: string; oldValue: string | null; newValue: string | null }[];
    expect(changed).toContainEqual({ displayName: 'osVersion', oldValue: null, newValue: '18.0' });
  });

  it('never records two devices for one UDID, even when enrolled concurrently', async () => {
    const udid = `00008101-${serial()}`;
    const results = await Promise.allSettled([enroll(t, { udid, deviceName: 'one' }), enroll(t, { udid, deviceName: 'two' })]);
    for (const r of results) {
      // SQLite serialises the two (the second updates); PostgreSQL refuses the loser with a 409 to retry.
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ statusCode: 409 });
    }
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    const rows = await t.store.db.selectFrom('managed_devices').select('id').where('tenant_id', '=', t.tenantId).where('udid', '=', udid).execute();
    expect(rows).toHaveLength(1);
  });

  it('refuses an over-long id', async () => {
    await expect(enroll(t, { id: 'x'.repeat(201) })).rejects.toBeInstanceOf(GraphError);
  });
});

describe('device change listeners', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  it('run inside the enrollment transaction with before and after rows', async () => {
    const seen: { change: DeviceChange; visibleInTrx: boolean }[] = [];
    const off = deviceRecords(t).onChange(async (trx, change) => {
      const id = (change.after ?? change.before)!.id;
      const row = await trx.selectFrom('managed_devices').select('id').where('id', '=', id).executeTakeFirst();
      seen.push({ change, visibleInTrx: row !== undefined });
    });
    try {
      const s = serial();
      const created = await enroll(t, { serialNumber: s, osVersion: '1' });
      await enroll(t, { serialNumber: s, osVersion: '2' });
      expect(seen).toHaveLength(2);
      expect(seen[0]!.change.before).toBeNull();
      expect(seen[0]!.change.after).toMatchObject({ id: created.device.id, os_version: '1', tenant_id: t.tenantId });
      expect(seen[0]!.visibleInTrx).toBe(true);
      expect(seen[1]!.change.before).toMatchObject({ os_version: '1' });
      expect(seen[1]!.change.after).toMatchObject({ os_version: '2' });
      expect(seen[1]!.change.tenantId).toBe(t.tenantId);
    } finally {
      off();
    }
    await enroll(t, { serialNumber: serial() });
    expect(seen).toHaveLength(2); // unregistered
  });

  it('roll the whole change back when a listener throws', async () => {
    const s = serial();
    const auditBefore = await t.store.db.selectFrom('audit_events').select('id').execute();
    const tagsBefore = await t.store.db.selectFrom('object_scope_tags').select('object_id').where('object_type', '=', 'managedDevice').execute();
    const off = deviceRecords(t).onChange(async (trx) => {
      // A listener's own write must roll back with the device.
      await trx
        .insertInto('groups')
        .values({ id: 'g-rollback', tenant_id: t.tenantId, display_name: 'x', description: null, mail_nickname: null, mail_enabled: 0, security_enabled: 1, group_types: '[]', membership_rule: null, membership_rule_processing_state: null, created_at: 'now', updated_at: 'now' })
        .execute();
      throw new Error('listener failed');
    });
    try {
      await expect(enroll(t, { serialNumber: s })).rejects.toThrow('listener failed');
    } finally {
      off();
    }
    expect(await deviceRecords(t).findByIdentity(t.store.db, t.tenantId, { serialNumber: s })).toBeUndefined();
    expect(await t.store.db.selectFrom('groups').select('id').where('id', '=', 'g-rollback').executeTakeFirst()).toBeUndefined();
    expect(await t.store.db.selectFrom('object_scope_tags').select('object_id').where('object_type', '=', 'managedDevice').execute()).toHaveLength(tagsBefore.length);
    expect(await t.store.db.selectFrom('audit_events').select('id').execute()).toHaveLength(auditBefore.length);
  });

  it('run in order, each seeing the same transaction', async () => {
    const order: string[] = [];
    const offA = deviceRecords(t).onChange(async () => void order.push('a'));
    const offB = deviceRecords(t).onChange(async () => void order.push('b'));
    try {
      await enroll(t, { serialNumber: serial() });
    } finally {
      offA();
      offB();
    }
    expect(order).toEqual(['a', 'b']);
  });
});
