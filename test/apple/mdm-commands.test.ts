import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppleModule } from '../../src/apple/module.js';
import type { DeviceRecords } from '../../src/devices/service.js';
import { parsePlistDict, type PlistValue } from '../../src/shared/plist.js';
import { HOUR } from '../../src/shared/time.js';
import { adeGateRequest, commandIn, fixture, mdmHarness, MANAGED_DEVICES, plistBody, type Identity, type Json, type MdmHarness } from './mdm-support.js';

/**
 * An ADE iPhone from its first TokenUpdate through its command channel: the managed device and the
 * ADE device record, the first commands in order, results (Acknowledged, Error, CommandFormatError,
 * NotNow), the device name template at check-ins, and the admin API over it all.
 */

const IOS = '#microsoft.graph.depIOSEnrollmentProfile';
const MAC = '#microsoft.graph.depMacOSEnrollmentProfile';
const UDID = '00008120-001A2C3E0E6B401E';
const SERIAL = 'F17XK2ABCD12';

describe('ADE iPhone: enrollment completion and the command channel', () => {
  let h: MdmHarness;
  let id: Identity;
  let tokenId: string;
  let tagId: string;
  let profileId: string;
  let userId: string;
  let deviceId: string;
  let pushToken: string;
  const commands = `${MANAGED_DEVICES}/{id}/appleMdmCommands`;
  const cmdUrl = (path = '') => commands.replace('{id}', deviceId) + path;
  const idle = () => h.send('server', fixture('report-idle-ios17.plist'), id);
  const answer = (uuid: string, status: string, extra: Record<string, PlistValue> = {}) => h.send('server', { UDID, CommandUUID: uuid, Status: status, ...extra }, id);
  const queue = async () =>
    h.t.store.db
      .selectFrom('mdm_command_queue as q')
      .innerJoin('mdm_commands as c', 'c.uuid', 'q.command_uuid')
      .innerJoin('mdm_enrollments as e', 'e.id', 'q.enrollment_id')
      .select(['q.command_uuid', 'q.status', 'q.not_now_count', 'q.after_prior', 'q.error_chain', 'c.request_type', 'c.command_plist', 'c.source'])
      .where('e.channel_key', '=', `device:${UDID}`)
      .orderBy('q.seq')
      .execute();
  const enrollment = () => h.t.store.db.selectFrom('mdm_enrollments').selectAll().where('channel_key', '=', `device:${UDID}`).executeTakeFirstOrThrow();
  const managed = async (key?: string): Promise<Json> => h.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${deviceId}`, ...(key ? { key } : {}) });

  beforeAll(async () => {
    h = await mdmHarness();
    const tag = await h.ok({ method: 'POST', url: '/beta/deviceManagement/roleScopeTags', payload: { displayName: 'Stores' } }, 201);
    tagId = tag.id;
    ({ tokenId } = await h.connectedToken('Stores', { roleScopeTagIds: [tagId] }));
    const { serverUuid } = await h.t.store.db.selectFrom('dep_tokens').select('server_uuid as serverUuid').where('id', '=', tokenId).executeTakeFirstOrThrow() as { serverUuid: string };
    h.sim.addDevices([{ serial_number: SERIAL, model: 'iPhone 15 Pro', device_family: 'iPhone', os: 'iOS' }]);
    h.sim.assignDevicesToServer(serverUuid, { serials: [SERIAL] });
    await h.drain();
    const profile = await h.ok(
      {
        method: 'POST',
        url: `/beta/deviceManagement/depOnboardingSettings/${tokenId}/enrollmentProfiles`,
        payload: { '@odata.type': IOS, displayName: 'Store iPhones', requiresUserAuthentication: true, deviceNameTemplate: '{{DEVICETYPE}}-{{SERIAL}}', awaitDeviceConfiguredConfirmation: true },
      },
      201,
    );
    profileId = profile.id;
    const user = await h.ok({ method: 'POST', url: '/v1.0/users', payload: { displayName: 'Grace Hopper', userPrincipalName: 'grace@contoso.com' } }, 201);
    userId = user.id;
  });
  afterAll(async () => h.close());

  it('completes the enrollment at the first TokenUpdate: managed device, ADE device Enrolled, gate success, first commands in order, pushed', async () => {
    const dep = await h.t.store.db.selectFrom('dep_devices').selectAll().where('serial_number', '=', SERIAL).executeTakeFirstOrThrow();
    const request = adeGateRequest(h.tenantId, { serial: SERIAL, userId });
    const decision = await h.gate.decide(request);
    expect(decision.allowed).toBe(true);
    const revision = (await h.t.store.db.selectFrom('dep_profiles').select('revision').where('id', '=', profileId).executeTakeFirstOrThrow()).revision;
    const intentId = await h.intent({
      source: 'ade',
      platform: 'iOS',
      serialNumber: SERIAL,
      depDeviceId: dep.id,
      profileId,
      profileName: 'Store iPhones',
      profileRevision: revision,
      userId,
      ownership: 'company',
      deviceEnrollmentType: 'appleBulkWithUser',
      scopeTagIds: [tagId],
      gateRequest: request,
      gateDecision: decision,
    });
    id = await h.identity(intentId);
    expect((await h.send('checkin', fixture('checkin-authenticate-ios17.plist'), id)).statusCode).toBe(200);
    const tu = await h.send('checkin', fixture('checkin-tokenupdate-ios17-awaiting.plist'), id);
    expect(tu.statusCode, tu.body).toBe(200);

    const e = await enrollment();
    deviceId = e.managed_device_id!;
    pushToken = e.push_token!;
    expect(await managed()).toMatchObject({
      managedDeviceOwnerType: 'company',
      deviceEnrollmentType: 'appleBulkWithUser',
      enrollmentProfileName: 'Store iPhones',
      userId,
      userPrincipalName: 'grace@contoso.com',
      userDisplayName: 'Grace Hopper',
      isSupervised: true,
      operatingSystem: 'iOS',
      osVersion: '17.4.1',
      model: 'iPhone15,2',
      serialNumber: SERIAL,
      udid: UDID,
      roleScopeTagIds: [tagId],
    });
    const ade = await h.ok({ method: 'GET', url: `/beta/deviceManagement/depOnboardingSettings/${tokenId}/importedAppleDeviceIdentities?$filter=serialNumber eq '${SERIAL}'` });
    expect(ade.value[0]).toMatchObject({ enrollmentState: 'enrolled', deviceStatus: 'enrolled', isSupervised: true });
    const depAfter = await h.t.store.db.selectFrom('dep_devices').selectAll().where('id', '=', dep.id).executeTakeFirstOrThrow();
    expect(depAfter).toMatchObject({ managed_device_id: deviceId, enrolled_profile_id: profileId, enrolled_profile_revision: revision });
    const attempt = await h.t.store.db.selectFrom('enrollment_attempts').selectAll().where('activity_id', '=', decision.activityId).executeTakeFirstOrThrow();
    expect(attempt).toMatchObject({ outcome: 'succeeded', device_id: deviceId, method: 'appleAde', user_id: userId });

    const q = await queue();
    expect(q.map((r) => [r.request_type, r.after_prior, r.source])).toEqual([
      ['DeviceInformation', 0, 'system'],
      ['Settings', 0, 'system'],
      ['DeviceConfigured', 1, 'system'],
    ]);
    const settings = parsePlistDict(q[1]!.command_plist).Command as Record<string, PlistValue>;
    expect(settings.Settings).toEqual([{ Item: 'DeviceName', DeviceName: `iPhone-${SERIAL}` }]);

    // The push job runs after commit and wakes the device through APNs.
    await h.drain();
    const pushes = h.apns.delivered(pushToken);
    expect(pushes.length).toBeGreaterThanOrEqual(1);
    expect(pushes[0]!.pushMagic).toBe('6A9F3C1E-2B7D-4E58-9C0A-5F1D8E3B7A24');
  });

  it('serves the commands in order; NotNow is not served again in the same poll; DeviceConfigured waits for the others', async () => {
    const first = commandIn(await idle());
    expect(first!.requestType).toBe('DeviceInformation');
    expect(first!.command.Queries).toEqual(expect.arrayContaining(['OSVersion', 'ProductName', 'SerialNumber', 'DeviceName']));
    const report = fixture('report-deviceinformation-ios17.plist').toString().replace('__COMMAND_UUID__', first!.uuid);
    const second = commandIn(await h.send('server', report, id));
    expect(await managed()).toMatchObject({ osVersion: '17.5', deviceName: 'iPhone', wiFiMacAddress: 'a4:83:e7:12:34:56', phoneNumber: '+1 (555) 010-0199', imei: '353917112345678' });
    expect((await enrollment()).inventory_at).not.toBeNull();

    expect(second!.requestType).toBe('Settings');
    // Deferred: the next command would be DeviceConfigured, which waits for Settings. Nothing more this poll.
    expect(commandIn(await answer(second!.uuid, 'NotNow'))).toBeNull();
    expect((await queue()).map((r) => [r.request_type, r.status, r.not_now_count])).toEqual([
      ['DeviceInformation', 'Acknowledged', 0],
      ['Settings', 'NotNow', 1],
      ['DeviceConfigured', 'queued', 0],
    ]);
    // The next Idle retries it.
    const retried = commandIn(await idle());
    expect(retried!.uuid).toBe(second!.uuid);
    const released = commandIn(await answer(second!.uuid, 'Acknowledged'));
    expect((await managed()).deviceName).toBe(`iPhone-${SERIAL}`);
    expect(released!.requestType).toBe('DeviceConfigured');
    expect((await enrollment()).awaiting_configuration).toBe(1);
    expect(commandIn(await answer(released!.uuid, 'Acknowledged'))).toBeNull();
    const e = await enrollment();
    expect(e.awaiting_configuration).toBe(0);
    expect(e.device_configured_at).not.toBeNull();
    // Nothing is due: the inventory is fresh and the name is the template's.
    expect(commandIn(await idle())).toBeNull();
  });

  it('re-applies the device name template at check-ins when the name changed, once while pending, not again after a refusal', async () => {
    h.clock.advance(25 * HOUR);
    const inventory = commandIn(await idle());
    expect(inventory!.requestType).toBe('DeviceInformation');
    const renamed = fixture('report-deviceinformation-ios17.plist').toString().replace('__COMMAND_UUID__', inventory!.uuid).replace('<string>iPhone</string>', "<string>Bob's iPhone</string>");
    expect(commandIn(await h.send('server', renamed, id))).toBeNull();
    expect((await managed()).deviceName).toBe("Bob's iPhone");

    const rename = commandIn(await idle());
    expect(rename!.requestType).toBe('Settings');
    expect(rename!.command.Settings).toEqual([{ Item: 'DeviceName', DeviceName: `iPhone-${SERIAL}` }]);
    // Unanswered (the connection dropped): served again, not queued twice.
    expect(commandIn(await idle())!.uuid).toBe(rename!.uuid);
    expect((await queue()).filter((r) => r.request_type === 'Settings' && ['queued', 'sent', 'NotNow'].includes(r.status))).toHaveLength(1);

    // The device refuses with an ErrorChain: recorded, and the same name isn't pushed at every check-in.
    const error = fixture('report-error-settings-ios17.plist').toString().replace('__COMMAND_UUID__', rename!.uuid);
    expect(commandIn(await h.send('server', error, id))).toBeNull();
    const row = (await queue()).find((r) => r.command_uuid === rename!.uuid)!;
    expect(row.status).toBe('Error');
    expect(JSON.parse(row.error_chain!)).toEqual([
      { errorCode: 12078, errorDomain: 'MCMDMErrorDomain', localizedDescription: 'The device must be supervised to use this setting.', usEnglishDescription: 'The device must be supervised to use this setting.' },
    ]);
    expect((await managed()).deviceName).toBe("Bob's iPhone");
    expect(commandIn(await idle())).toBeNull();
    // A result for a command the device was never sent is ignored.
    expect(commandIn(await answer(crypto.randomUUID(), 'Acknowledged'))).toBeNull();
  });

  it('updates lastSyncDateTime at check-ins (at most every 15 minutes)', async () => {
    const before = (await managed()).lastSyncDateTime as string;
    h.clock.advance(16 * 60_000);
    await idle();
    const after = (await managed()).lastSyncDateTime as string;
    expect(after > before).toBe(true);
    h.clock.advance(60_000);
    await idle();
    expect((await managed()).lastSyncDateTime).toBe(after);
  });

  describe('admin API', () => {
    it('lists the device\'s commands newest first with OData options, and reads one with its result as JSON', async () => {
      const list = await h.ok({ method: 'GET', url: cmdUrl() });
      expect(list['@odata.context']).toBe(`https://openenroll.test/beta/$metadata#deviceManagement/managedDevices('${deviceId}')/appleMdmCommands`);
      expect(list.value.map((c: Json) => c.requestType)).toEqual(['Settings', 'DeviceInformation', 'DeviceConfigured', 'Settings', 'DeviceInformation']);
      expect(list.value[0]).toMatchObject({ '@odata.type': '#openEnroll.appleMdmCommand', status: 'Error', source: 'system', channel: 'device', errorChain: [expect.objectContaining({ errorCode: 12078 })] });
      expect(list.value[0].result).toBeUndefined();
      const acked = await h.ok({ method: 'GET', url: cmdUrl(`?$filter=${encodeURIComponent("status eq 'Acknowledged' and requestType eq 'DeviceInformation'")}&$orderby=queuedDateTime&$count=true`) });
      expect(acked['@odata.count']).toBe(2);
      const one = await h.ok({ method: 'GET', url: cmdUrl(`/${acked.value[0].id}`) });
      expect(one).toMatchObject({ requestType: 'DeviceInformation', status: 'Acknowledged', payload: { Queries: expect.arrayContaining(['OSVersion']) } });
      expect(one.result.QueryResponses).toMatchObject({ OSVersion: '17.5', ProductName: 'iPhone15,2', IsSupervised: true });
      expect(one.completedDateTime).toEqual(expect.any(String));
      expect((await h.request({ method: 'GET', url: cmdUrl('/00000000-0000-0000-0000-000000000000') })).statusCode).toBe(404);
    });

    it('queues an admin command (201), audited, served at the next check-in; ProfileList is stored', async () => {
      const created = await h.ok({ method: 'POST', url: cmdUrl(), payload: { requestType: 'ProfileList' } }, 201);
      expect(created).toMatchObject({ '@odata.type': '#openEnroll.appleMdmCommand', requestType: 'ProfileList', status: 'queued', source: 'admin', payload: {} });
      expect(created.commandUuid).toBe(created.id);
      const audit = await h.t.store.db.selectFrom('audit_events').selectAll().where('activity', '=', 'Queue Apple MDM command').executeTakeFirstOrThrow();
      expect(audit).toMatchObject({ resource_id: deviceId, activity_operation_type: 'Action' });
      const served = commandIn(await idle());
      expect(served!.uuid).toBe(created.id);
      const profiles = [
        { PayloadIdentifier: 'com.openenroll.mdm', PayloadUUID: 'A1', PayloadDisplayName: 'MDM', PayloadOrganization: 'Contoso', PayloadVersion: 1, IsManaged: true, PayloadRemovalDisallowed: false, IsEncrypted: false, SignerCertificates: [crypto.randomBytes(300)] },
      ];
      expect(commandIn(await answer(served!.uuid, 'Acknowledged', { ProfileList: profiles }))).toBeNull();
      const view = await h.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${deviceId}/appleMdmEnrollment` });
      expect(view.installedProfiles).toEqual([
        { payloadIdentifier: 'com.openenroll.mdm', payloadUuid: 'A1', payloadDisplayName: 'MDM', payloadOrganization: 'Contoso', payloadVersion: 1, isManaged: true, isEncrypted: false, payloadRemovalDisallowed: false },
      ]);
      expect(view).toMatchObject({ enabled: true, pushable: true, udid: UDID, serialNumber: SERIAL, deviceConfiguredDateTime: expect.any(String), bootstrapTokenEscrowed: false });
    });

    it('records CommandFormatError, and a NotNow-ed command is skipped for the rest of the poll and retried at the next Idle', async () => {
      const a = await h.ok({ method: 'POST', url: cmdUrl(), payload: { requestType: 'DeviceInformation', payload: { Queries: ['OSVersion'] } } }, 201);
      const b = await h.ok({ method: 'POST', url: cmdUrl(), payload: { requestType: 'ProfileList', payload: { ManagedOnly: true } } }, 201);
      expect(commandIn(await idle())!.uuid).toBe(a.id);
      const next = commandIn(await answer(a.id, 'NotNow'));
      expect(next!.uuid).toBe(b.id);
      expect(next!.command).toEqual({ RequestType: 'ProfileList', ManagedOnly: true });
      expect(commandIn(await answer(b.id, 'CommandFormatError'))).toBeNull();
      expect(await h.ok({ method: 'GET', url: cmdUrl(`/${b.id}`) })).toMatchObject({ status: 'CommandFormatError', completedDateTime: expect.any(String) });
      expect(commandIn(await idle())!.uuid).toBe(a.id);
      expect(commandIn(await answer(a.id, 'Acknowledged', { QueryResponses: { OSVersion: '17.5.1' } }))).toBeNull();
      expect(await h.ok({ method: 'GET', url: cmdUrl(`/${a.id}`) })).toMatchObject({ status: 'Acknowledged', notNowCount: 1 });
      expect((await managed()).osVersion).toBe('17.5.1');
      // A repeated result (the device retrying) changes nothing.
      await answer(a.id, 'Error');
      expect(await h.ok({ method: 'GET', url: cmdUrl(`/${a.id}`) })).toMatchObject({ status: 'Acknowledged' });
    });

    it('validates request types and payloads, naming the property', async () => {
      const bad = async (payload: Json, target: string) => {
        const res = await h.request({ method: 'POST', url: cmdUrl(), payload });
        expect(res.statusCode, res.body).toBe(400);
        expect(res.json().error.target).toBe(target);
      };
      await bad({ requestType: 'EraseDevice' }, 'requestType');
      await bad({ requestType: 'ProfileList', payload: { Sneaky: true } }, 'payload.Sneaky');
      await bad({ requestType: 'ProfileList', payload: { ManagedOnly: 'yes' } }, 'payload.ManagedOnly');
      await bad({ requestType: 'DeviceInformation', payload: { Queries: [] } }, 'payload.Queries');
      await bad({ requestType: 'DeviceInformation', payload: { Queries: ['OS Version'] } }, 'payload.Queries');
      await bad({ requestType: 'Settings', payload: { Settings: [{ Item: 'Wallpaper' }] } }, 'payload.Settings[0].Item');
      await bad({ requestType: 'Settings', payload: { Settings: [{ Item: 'DeviceName', DeviceName: '' }] } }, 'payload.Settings[0].DeviceName');
      await bad({ requestType: 'InstallProfile', payload: { Payload: 'not base64 !!' } }, 'payload.Payload');
      await bad({ requestType: 'InstallProfile', payload: { Payload: Buffer.from('<plist version="1.0"><dict><key>PayloadType</key><string>Other</string></dict></plist>').toString('base64') } }, 'payload.Payload');
      await bad({ requestType: 'DeviceConfigured', payload: { Now: true } }, 'payload.Now');
      await bad({ requestType: 'ProfileList', extra: 1 }, 'extra');
      expect((await h.request({ method: 'POST', url: cmdUrl(), payload: { requestType: 'ProfileList' } })).statusCode).toBe(201);
    });

    it('InstallProfile carries the profile as data', async () => {
      const mobileconfig = fixture('enroll-scep-mdm.mobileconfig', new URL('../fixtures/public/apple/', import.meta.url));
      const created = await h.ok({ method: 'POST', url: cmdUrl(), payload: { requestType: 'InstallProfile', payload: { Payload: mobileconfig.toString('base64') } } }, 201);
      expect(created.payload.Payload).toBe(mobileconfig.toString('base64'));
      const row = await h.t.store.db.selectFrom('mdm_commands').select('command_plist').where('uuid', '=', created.id).executeTakeFirstOrThrow();
      expect((parsePlistDict(row.command_plist).Command as Record<string, PlistValue>).Payload).toEqual(mobileconfig);
    });

    it('setDeviceName queues Settings DeviceName; syncDevice pushes', async () => {
      expect((await h.request({ method: 'POST', url: `${MANAGED_DEVICES}/${deviceId}/setDeviceName`, payload: { deviceName: 'Lab-01' } })).statusCode).toBe(204);
      const list = await h.ok({ method: 'GET', url: cmdUrl(`?$filter=${encodeURIComponent("requestType eq 'Settings' and source eq 'admin'")}`) });
      const one = await h.ok({ method: 'GET', url: cmdUrl(`/${list.value[0].id}`) });
      expect(one.payload).toEqual({ Settings: [{ Item: 'DeviceName', DeviceName: 'Lab-01' }] });
      const blank = await h.request({ method: 'POST', url: `${MANAGED_DEVICES}/${deviceId}/microsoft.graph.setDeviceName`, payload: { deviceName: '  ' } });
      expect(blank.statusCode).toBe(400);
      expect(blank.json().error.target).toBe('deviceName');

      const before = h.apns.delivered(pushToken).length;
      expect((await h.request({ method: 'POST', url: `/v1.0/deviceManagement/managedDevices/${deviceId}/syncDevice` })).statusCode).toBe(204);
      expect(h.apns.delivered(pushToken).length).toBe(before + 1);
      const audit = await h.t.store.db.selectFrom('audit_events').select('activity').where('resource_id', '=', deviceId).where('activity', '=', 'Sync device').executeTakeFirst();
      expect(audit).toBeDefined();
    });

    it('is scope-filtered through the device and needs devices.write to queue', async () => {
      const reader = await h.t.createKey('readOnlyOperator');
      expect((await h.request({ method: 'GET', url: cmdUrl(), key: reader })).statusCode).toBe(200);
      expect((await h.request({ method: 'POST', url: cmdUrl(), payload: { requestType: 'ProfileList' }, key: reader })).statusCode).toBe(403);
      expect((await h.request({ method: 'POST', url: `${MANAGED_DEVICES}/${deviceId}/syncDevice`, key: reader })).statusCode).toBe(403);

      const inScope = await h.t.createKey('scopedAdministrator', [tagId]);
      expect((await h.request({ method: 'GET', url: cmdUrl(), key: inScope })).statusCode).toBe(200);
      expect((await h.request({ method: 'POST', url: cmdUrl(), payload: { requestType: 'ProfileList' }, key: inScope })).statusCode).toBe(201);

      const other = await h.ok({ method: 'POST', url: '/beta/deviceManagement/roleScopeTags', payload: { displayName: 'Elsewhere' } }, 201);
      const outOfScope = await h.t.createKey('scopedAdministrator', [other.id]);
      for (const req of [
        { method: 'GET' as const, url: cmdUrl() },
        { method: 'POST' as const, url: cmdUrl(), payload: { requestType: 'ProfileList' } },
        { method: 'GET' as const, url: `${MANAGED_DEVICES}/${deviceId}/appleMdmEnrollment` },
        { method: 'POST' as const, url: `${MANAGED_DEVICES}/${deviceId}/setDeviceName`, payload: { deviceName: 'x' } },
        { method: 'POST' as const, url: `${MANAGED_DEVICES}/${deviceId}/syncDevice` },
      ]) {
        expect((await h.request({ ...req, key: outOfScope })).statusCode, req.url).toBe(404);
      }
      // Another tenant sees nothing either.
      const tenant = await h.t.createTenant('Elsewhere Inc');
      expect((await h.request({ method: 'GET', url: cmdUrl(), key: tenant.adminKey })).statusCode).toBe(404);
    });

    it('answers 409 for a device without an active Apple MDM enrollment', async () => {
      const devices = (h.t.app.modules.find((m) => m.name === 'devices') as unknown as { devices: DeviceRecords }).devices;
      const { device } = await h.t.store.transaction((trx) => devices.upsert(trx, h.tenantId, { serialNumber: 'WINDOWS-1', operatingSystem: 'Windows' }));
      const res = await h.request({ method: 'POST', url: `${MANAGED_DEVICES}/${device.id}/appleMdmCommands`, payload: { requestType: 'ProfileList' } });
      expect(res.statusCode).toBe(409);
      expect((await h.request({ method: 'GET', url: `${MANAGED_DEVICES}/${device.id}/appleMdmEnrollment` })).statusCode).toBe(404);
      expect((await h.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${device.id}/appleMdmCommands` })).value).toEqual([]);
    });
  });

  it('CheckOut leaves the ADE device no longer enrolled and the managed device retirePending', async () => {
    const res = await h.send('checkin', { MessageType: 'CheckOut', UDID, Topic: h.topic }, id);
    expect(res.statusCode).toBe(200);
    const ade = await h.ok({ method: 'GET', url: `/beta/deviceManagement/depOnboardingSettings/${tokenId}/importedAppleDeviceIdentities?$filter=serialNumber eq '${SERIAL}'` });
    expect(ade.value[0].enrollmentState).toBe('notContacted');
    expect((await managed()).managementState).toBe('retirePending');
    expect((await h.request({ method: 'POST', url: cmdUrl(), payload: { requestType: 'ProfileList' } })).statusCode).toBe(409);
    expect((await queue()).filter((r) => ['queued', 'sent', 'NotNow'].includes(r.status))).toEqual([]);
  });
});

describe('ADE Mac awaiting configuration: AccountConfiguration before DeviceConfigured', () => {
  let h: MdmHarness;
  afterAll(async () => h?.close());

  it('queues AccountConfiguration from the profile (admin account with a PBKDF2 hash, primary account prefilled) and releases the Mac after it', async () => {
    h = await mdmHarness();
    const { tokenId } = await h.connectedToken('Macs');
    const profile = await h.ok(
      {
        method: 'POST',
        url: `/beta/deviceManagement/depOnboardingSettings/${tokenId}/enrollmentProfiles`,
        payload: {
          '@odata.type': MAC,
          displayName: 'Engineering Macs',
          requiresUserAuthentication: true,
          adminAccountUserName: 'itadmin',
          adminAccountFullName: 'IT Admin',
          adminAccountPassword: 'Correct-Horse-1',
          hideAdminAccount: true,
          primaryAccountUserName: '{{partialupn}}',
          primaryAccountFullName: '{{username}}',
          enableRestrictEditing: true,
          deviceNameTemplate: '{{DEVICETYPE}}-{{SERIAL}}',
        },
      },
      201,
    );
    const user = await h.ok({ method: 'POST', url: '/v1.0/users', payload: { displayName: 'Ada Lovelace', userPrincipalName: 'ada@contoso.com' } }, 201);
    const id = await h.identity(
      await h.intent({ source: 'ade', platform: 'macOS', serialNumber: 'C02ZX1ABMD6T', profileId: profile.id, profileName: 'Engineering Macs', profileRevision: 1, userId: user.id, ownership: 'company', deviceEnrollmentType: 'appleBulkWithUser' }),
    );
    expect((await h.send('checkin', fixture('checkin-authenticate-macos14.plist'), id)).statusCode).toBe(200);
    expect((await h.send('checkin', fixture('checkin-tokenupdate-macos14-awaiting.plist'), id)).statusCode).toBe(200);
    const udid = '9E5A1A3C-7B2D-5F4E-8C61-0D3F2A9B4E7C';
    const served: string[] = [];
    let res = await h.send('server', { UDID: udid, Status: 'Idle' }, id);
    let account: Record<string, PlistValue> | undefined;
    for (let cmd = commandIn(res); cmd; cmd = commandIn(res)) {
      served.push(cmd.requestType);
      if (cmd.requestType === 'AccountConfiguration') account = cmd.command;
      if (cmd.requestType === 'Settings') expect(cmd.command.Settings).toEqual([{ Item: 'DeviceName', DeviceName: 'Mac-C02ZX1ABMD6T' }]);
      res = await h.send('server', { UDID: udid, Status: 'Acknowledged', CommandUUID: cmd.uuid }, id);
    }
    expect(served).toEqual(['DeviceInformation', 'Settings', 'AccountConfiguration', 'DeviceConfigured']);
    expect(account).toMatchObject({
      SkipPrimarySetupAccountCreation: false,
      SetPrimarySetupAccountAsRegularUser: false,
      DontAutoPopulatePrimaryAccountInfo: false,
      LockPrimaryAccountInfo: true,
      PrimaryAccountUserName: 'ada',
      PrimaryAccountFullName: 'Ada Lovelace',
    });
    const [admin] = account!.AutoSetupAdminAccounts as Record<string, PlistValue>[];
    expect(admin).toMatchObject({ shortName: 'itadmin', fullName: 'IT Admin', hidden: true });
    const hash = parsePlistDict(admin!.passwordHash as Buffer)['SALTED-SHA512-PBKDF2'] as Record<string, PlistValue>;
    const expected = crypto.pbkdf2Sync('Correct-Horse-1', hash.salt as Buffer, hash.iterations as number, 128, 'sha512');
    expect(hash.entropy).toEqual(expected);
    expect((hash.salt as Buffer).length).toBe(32);
    // The password itself is in no command.
    const plists = await h.t.store.db.selectFrom('mdm_commands').select('command_plist').execute();
    expect(plists.some((p) => p.command_plist.includes('Correct-Horse-1'))).toBe(false);
    const e = await h.t.store.db.selectFrom('mdm_enrollments').selectAll().where('channel_key', '=', `device:${udid}`).executeTakeFirstOrThrow();
    expect(e.device_configured_at).not.toBeNull();
  });

  it('a plain profile (no accounts) gets no AccountConfiguration', async () => {
    const { tokenId } = await h.connectedToken('Plain Macs');
    const profile = await h.ok({ method: 'POST', url: `/beta/deviceManagement/depOnboardingSettings/${tokenId}/enrollmentProfiles`, payload: { '@odata.type': MAC, displayName: 'Plain' } }, 201);
    const udid = 'AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE';
    const id = await h.identity(await h.intent({ source: 'ade', platform: 'macOS', profileId: profile.id, profileName: 'Plain', ownership: 'company', deviceEnrollmentType: 'appleBulkWithoutUser' }));
    expect((await h.send('checkin', { MessageType: 'Authenticate', UDID: udid, Topic: h.topic, ProductName: 'Mac15,3', Model: 'Mac15,3', ModelName: 'MacBook Pro', OSVersion: '14.4', SerialNumber: 'PLAINMAC01' }, id)).statusCode).toBe(200);
    expect((await h.send('checkin', plistBody({ MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: 'PM', AwaitingConfiguration: true }), id)).statusCode).toBe(200);
    const rows = await h.t.store.db
      .selectFrom('mdm_command_queue as q')
      .innerJoin('mdm_commands as c', 'c.uuid', 'q.command_uuid')
      .innerJoin('mdm_enrollments as e', 'e.id', 'q.enrollment_id')
      .select('c.request_type')
      .where('e.channel_key', '=', `device:${udid}`)
      .orderBy('q.seq')
      .execute();
    expect(rows.map((r) => r.request_type)).toEqual(['DeviceInformation', 'DeviceConfigured']);
  });
});

describe('CommandQueue (the contract other modules call)', () => {
  let h: MdmHarness;
  let apple: AppleModule;
  const enrolled: { id: string; token: string }[] = [];
  beforeAll(async () => {
    h = await mdmHarness();
    apple = h.apple as AppleModule;
    for (const udid of ['00008030-00000000000Q0001', '00008030-00000000000Q0002']) {
      const id = await h.identity(await h.intent());
      expect((await h.send('checkin', { MessageType: 'Authenticate', UDID: udid, Topic: h.topic }, id)).statusCode).toBe(200);
      const token = crypto.randomBytes(32);
      expect((await h.send('checkin', { MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: token, PushMagic: `PM-${udid}` }, id)).statusCode).toBe(200);
      const e = await h.t.store.db.selectFrom('mdm_enrollments').select('id').where('udid', '=', udid).executeTakeFirstOrThrow();
      enrolled.push({ id: e.id, token: token.toString('hex') });
    }
    await h.drain();
  });
  afterAll(async () => h.close());

  it('stores one command for many enrollments and pushes them after commit', async () => {
    const uuid = await h.t.store.transaction((trx) =>
      apple.mdm.queue.enqueue(trx, h.tenantId, enrolled.map((e) => e.id), { requestType: 'ProfileList', payload: { ManagedOnly: true } }, { source: 'admin', createdBy: 'tester', priority: 5 }),
    );
    const rows = await h.t.store.db.selectFrom('mdm_command_queue').selectAll().where('command_uuid', '=', uuid).execute();
    expect(rows.map((r) => [r.status, r.priority]).sort()).toEqual([
      ['queued', 5],
      ['queued', 5],
    ]);
    const cmd = await h.t.store.db.selectFrom('mdm_commands').selectAll().where('uuid', '=', uuid).executeTakeFirstOrThrow();
    expect(cmd).toMatchObject({ request_type: 'ProfileList', source: 'admin', created_by: 'tester' });
    expect(parsePlistDict(cmd.command_plist)).toEqual({ Command: { RequestType: 'ProfileList', ManagedOnly: true }, CommandUUID: uuid });
    const before = enrolled.map((e) => h.apns.delivered(e.token).length);
    await h.drain();
    expect(enrolled.map((e) => h.apns.delivered(e.token).length)).toEqual(before.map((n) => n + 1));
    const pushed = await h.t.store.db.selectFrom('mdm_command_queue').select('push_sent_at').where('command_uuid', '=', uuid).execute();
    expect(pushed.every((p) => p.push_sent_at !== null)).toBe(true);
    // A higher priority goes first.
    const low = await h.t.store.transaction((trx) => apple.mdm.queue.enqueue(trx, h.tenantId, [enrolled[0]!.id], { requestType: 'DeviceInformation' }));
    expect(low).toMatch(/^[0-9A-F-]{36}$/);
    const served = commandIn(await h.send('server', { UDID: '00008030-00000000000Q0001', Status: 'Idle' }, await identityOf('00008030-00000000000Q0001')));
    expect(served?.requestType).toBe('ProfileList');
  });

  async function identityOf(udid: string): Promise<Identity> {
    // Tests re-sign with a fresh certificate bound to the same enrollment (as a renewal would be).
    const e = await h.t.store.db.selectFrom('mdm_enrollments').select('id').where('udid', '=', udid).executeTakeFirstOrThrow();
    const id = await h.identity(null);
    await h.t.store.transaction((trx) => apple.scep.identities.bindEnrollment(trx, h.tenantId, id.cert.sha256Thumbprint, e.id));
    return id;
  }

  it('writes nothing when the caller rolls back, and refuses unknown enrollments or unplistable payloads', async () => {
    const before = await h.snapshot();
    await expect(
      h.t.store.transaction(async (trx) => {
        await apple.mdm.queue.enqueue(trx, h.tenantId, [enrolled[0]!.id], { requestType: 'ProfileList' });
        throw new Error('caller failed');
      }),
    ).rejects.toThrow('caller failed');
    expect(await h.snapshot()).toBe(before);
    await expect(h.t.store.transaction((trx) => apple.mdm.queue.enqueue(trx, h.tenantId, ['nope'], { requestType: 'ProfileList' }))).rejects.toThrow(/unknown MDM enrollment/);
    await expect(h.t.store.transaction((trx) => apple.mdm.queue.enqueue(trx, h.tenantId, [], { requestType: 'ProfileList' }))).rejects.toThrow(/at least one/);
    await expect(h.t.store.transaction((trx) => apple.mdm.queue.enqueue(trx, h.tenantId, [enrolled[0]!.id], { requestType: 'Bad Type' }))).rejects.toThrow(TypeError);
    await expect(h.t.store.transaction((trx) => apple.mdm.queue.enqueue(trx, h.tenantId, [enrolled[0]!.id], { requestType: 'Settings', payload: { x: null } }))).rejects.toThrow(/property list/);
    // Another tenant's enrollment is unknown here.
    const other = await h.t.createTenant('Queue other');
    await expect(h.t.store.transaction((trx) => apple.mdm.queue.enqueue(trx, other.tenantId, [enrolled[0]!.id], { requestType: 'ProfileList' }))).rejects.toThrow(/unknown MDM enrollment/);
    expect(await h.snapshot()).toBe(before);
  });
});
