import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BULK_COMMAND_MAX_DEVICES } from '../../src/apple/mdm/admin.js';
import { commandIn, mdmHarness, MANAGED_DEVICES, type Identity, type Json, type MdmHarness } from './mdm-support.js';

/**
 * One command to many devices (queueAppleMdmCommand): one command UUID for every listed device the
 * caller sees with an active enrollment, split results like Graph's bulk device actions, the
 * device-count limit at and past its edge, and nothing written when nothing qualifies.
 */

const BULK = `${MANAGED_DEVICES}/queueAppleMdmCommand`;

describe('queueAppleMdmCommand: one command to many devices', () => {
  let h: MdmHarness;
  const devices: { udid: string; id: Identity; token: string; managedDeviceId: string }[] = [];
  let checkedOut: string;

  const enroll = async (udid: string) => {
    const id = await h.identity(await h.intent());
    expect((await h.send('checkin', { MessageType: 'Authenticate', UDID: udid, Topic: h.topic }, id)).statusCode).toBe(200);
    const token = crypto.randomBytes(32);
    expect((await h.send('checkin', { MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: token, PushMagic: `PM-${udid}` }, id)).statusCode).toBe(200);
    const e = await h.t.store.db.selectFrom('mdm_enrollments').select('managed_device_id').where('udid', '=', udid).executeTakeFirstOrThrow();
    return { udid, id, token: token.toString('hex'), managedDeviceId: e.managed_device_id! };
  };
  const queueRows = (uuid: string) => h.t.store.db.selectFrom('mdm_command_queue').select(['enrollment_id', 'status']).where('command_uuid', '=', uuid).execute();

  beforeAll(async () => {
    h = await mdmHarness();
    for (const udid of ['00008030-0000000000B00001', '00008030-0000000000B00002', '00008030-0000000000B00003']) devices.push(await enroll(udid));
    // The third checks out: its managed device stays, with no active enrollment.
    const gone = devices.pop()!;
    expect((await h.send('checkin', { MessageType: 'CheckOut', UDID: gone.udid, Topic: h.topic }, gone.id)).statusCode).toBe(200);
    checkedOut = gone.managedDeviceId;
    await h.drain();
  });
  afterAll(async () => h.close());

  it('queues one command for every enrolled device named, pushes each, and each device is served it; the rest are reported, one audit record', async () => {
    const missing = '00000000-0000-0000-0000-00000000dead';
    const before = devices.map((d) => h.apns.delivered(d.token).length);
    const res: Json = await h.ok({
      method: 'POST',
      url: BULK,
      payload: { requestType: 'DeviceInformation', payload: { Queries: ['OSVersion'] }, managedDeviceIds: [...devices.map((d) => d.managedDeviceId), checkedOut, missing, devices[0]!.managedDeviceId] },
    });
    expect(res['@odata.context']).toBe('https://openenroll.test/beta/$metadata#openEnroll.bulkAppleMdmCommandResult');
    expect(res).toMatchObject({
      requestType: 'DeviceInformation',
      successfulDeviceIds: devices.map((d) => d.managedDeviceId),
      failedDeviceIds: [],
      notFoundDeviceIds: [missing],
      notSupportedDeviceIds: [checkedOut],
    });
    expect(res.commandUuid).toMatch(/^[0-9A-F-]{36}$/);
    expect((await queueRows(res.commandUuid)).map((r) => r.status)).toEqual(['queued', 'queued']);
    const audit = await h.t.store.db.selectFrom('audit_events').selectAll().where('activity', '=', 'Queue Apple MDM command (bulk)').execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ resource_id: res.commandUuid, activity_operation_type: 'Action' });
    await h.drain();
    expect(devices.map((d) => h.apns.delivered(d.token).length)).toEqual(before.map((n) => n + 1));
    for (const d of devices) {
      // Behind the commands the enrollment queued; each answered until ours comes.
      let served = commandIn(await h.send('server', { UDID: d.udid, Status: 'Idle' }, d.id));
      for (let i = 0; served && served.uuid !== res.commandUuid && i < 10; i++) {
        served = commandIn(await h.send('server', { UDID: d.udid, CommandUUID: served.uuid, Status: 'Acknowledged' }, d.id));
      }
      expect(served).toMatchObject({ uuid: res.commandUuid, requestType: 'DeviceInformation' });
    }
    // Each device's own command list shows it.
    const listed = await h.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${devices[1]!.managedDeviceId}/appleMdmCommands/${res.commandUuid}` });
    expect(listed).toMatchObject({ status: 'sent', source: 'admin', payload: { Queries: ['OSVersion'] } });
  });

  it('writes nothing when no device qualifies: out of the caller\'s scope reads as not found', async () => {
    const tag = await h.ok({ method: 'POST', url: '/beta/deviceManagement/roleScopeTags', payload: { displayName: 'Elsewhere' } }, 201);
    const scoped = await h.t.createKey('scopedAdministrator', [tag.id]);
    const before = await h.snapshot();
    const res: Json = await h.ok({ method: 'POST', url: BULK, key: scoped, payload: { requestType: 'ProfileList', managedDeviceIds: devices.map((d) => d.managedDeviceId) } });
    expect(res).toMatchObject({ commandUuid: null, successfulDeviceIds: [], notFoundDeviceIds: devices.map((d) => d.managedDeviceId), notSupportedDeviceIds: [] });
    expect(await h.snapshot()).toBe(before);
    const reader = await h.t.createKey('readOnlyOperator');
    expect((await h.request({ method: 'POST', url: BULK, key: reader, payload: { requestType: 'ProfileList', managedDeviceIds: [devices[0]!.managedDeviceId] } })).statusCode).toBe(403);
  });

  it(`takes ${BULK_COMMAND_MAX_DEVICES} devices and refuses ${BULK_COMMAND_MAX_DEVICES + 1}, none, or a bad command, naming the field`, async () => {
    const ids = (n: number) => [devices[0]!.managedDeviceId, ...Array.from({ length: n - 1 }, (_, i) => `absent-${i}`)];
    const at: Json = await h.ok({ method: 'POST', url: BULK, payload: { requestType: 'ProfileList', managedDeviceIds: ids(BULK_COMMAND_MAX_DEVICES) } });
    expect(at.successfulDeviceIds).toEqual([devices[0]!.managedDeviceId]);
    expect(at.notFoundDeviceIds).toHaveLength(BULK_COMMAND_MAX_DEVICES - 1);
    const before = await h.snapshot();
    const refused = async (payload: unknown, field: RegExp) => {
      const res = await h.request({ method: 'POST', url: BULK, payload: payload as Record<string, unknown> });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error.message).toMatch(field);
    };
    await refused({ requestType: 'ProfileList', managedDeviceIds: ids(BULK_COMMAND_MAX_DEVICES + 1) }, /managedDeviceIds/);
    await refused({ requestType: 'ProfileList', managedDeviceIds: [] }, /managedDeviceIds/);
    await refused({ requestType: 'ProfileList' }, /managedDeviceIds/);
    await refused({ requestType: 'EraseDevice', managedDeviceIds: [devices[0]!.managedDeviceId] }, /requestType/);
    await refused({ requestType: 'DeviceInformation', payload: { Queries: [] }, managedDeviceIds: [devices[0]!.managedDeviceId] }, /payload\.Queries/);
    expect(await h.snapshot()).toBe(before);
  });
});
