import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, MINUTE } from '../../src/shared/time.js';
import { adeHarness, TOKENS, type AdeHarness } from '../helpers/apple.js';

/** A Graph JSON body. */
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** importedAppleDeviceIdentities: statuses, assignment at Apple, imports, filters, delete, scope. */

const IOS = '#microsoft.graph.depIOSEnrollmentProfile';
const MAC = '#microsoft.graph.depMacOSEnrollmentProfile';
const DEVICE_TYPE = '#microsoft.graph.importedAppleDeviceIdentity';

const IPHONES = ['DEVA1', 'DEVA2', 'DEVA3', 'DEVA4', 'DEVA5', 'DEVA6'];

describe('ADE devices', () => {
  let h: AdeHarness;
  let tokenId: string;
  let serverUuid: string;
  let profile: { id: string; appleProfileUuid: string };
  const url = (path = '') => `${TOKENS}/${tokenId}/importedAppleDeviceIdentities${path}`;
  const bySerial = async (serial: string) => (await h.ok({ method: 'GET', url: url(`?$filter=serialNumber eq '${serial}'`) })).value[0];
  const serialsOf = async (filter: string) =>
    ((await h.ok({ method: 'GET', url: url(`?$filter=${encodeURIComponent(filter)}&$select=serialNumber&$orderby=serialNumber`) })).value as { serialNumber: string }[]).map((d) => d.serialNumber);
  const assign = (profileId: string, deviceIds: string[]) =>
    h.request({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles/${profileId}/updateDeviceProfileAssignment`, payload: { deviceIds } });

  beforeAll(async () => {
    h = await adeHarness();
    ({ tokenId, serverUuid } = await h.connectedToken('Devices'));
    h.sim.addDevices([...IPHONES.map((s) => ({ serial_number: s, model: 'iPhone 15' })), { serial_number: 'MACA1', model: 'MacBook Air (M2, 2022)', device_family: 'Mac', os: 'OSX' }]);
    h.sim.assignDevicesToServer(serverUuid, { serials: [...IPHONES, 'MACA1'] });
    // A device of another MDM server of the organisation.
    const other = h.sim.createMdmServer('Another MDM');
    h.sim.addDevices([{ serial_number: 'FOREIGN1', model: 'iPhone 15' }]);
    h.sim.assignDevicesToServer(other.serverUuid, { serials: ['FOREIGN1'] });
    await h.drain();
    profile = await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles`, payload: { '@odata.type': IOS, displayName: 'Phones' } }, 201);
  });
  afterAll(async () => h.close());

  it('lists synced devices in the Graph shape with OpenEnroll\'s status properties', async () => {
    const list = await h.ok({ method: 'GET', url: url('?$orderby=serialNumber&$count=true') });
    expect(list['@odata.context']).toBe(`https://openenroll.test/beta/$metadata#deviceManagement/depOnboardingSettings('${tokenId}')/importedAppleDeviceIdentities`);
    expect(list['@odata.count']).toBe(7);
    const first = list.value[0];
    expect(first).toEqual({
      '@odata.type': DEVICE_TYPE,
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      serialNumber: 'DEVA1',
      requestedEnrollmentProfileId: null,
      requestedEnrollmentProfileAssignmentDateTime: null,
      isSupervised: false,
      platform: 'ios',
      description: 'IPHONE 15',
      discoverySource: 'deviceEnrollmentProgram',
      createdDateTime: h.clock.now().toISOString(),
      lastContactedDateTime: '0001-01-01T00:00:00Z',
      enrollmentState: 'notContacted',
      isDeleted: false,
      deviceStatus: 'missingProfile',
      appleAssignmentResult: null,
      appleAssignmentDateTime: null,
      removedFromAppleDateTime: null,
      effectiveEnrollmentProfileId: null,
    });
    expect(await h.ok({ method: 'GET', url: url(`('${first.id}')`) })).toEqual({
      ...first,
      '@odata.context': `https://openenroll.test/beta/$metadata#deviceManagement/depOnboardingSettings('${tokenId}')/importedAppleDeviceIdentities/$entity`,
    });
    expect(list.value.find((d: Json) => d.serialNumber === 'MACA1').platform).toBe('macOS');
    await h.ok({ method: 'GET', url: url('/no-such-device') }, 404);
  });

  it('updateDeviceProfileAssignment assigns the profile at Apple to exactly those serials and records Apple\'s answer', async () => {
    const res = await assign(profile.id, ['DEVA1', 'deva2']);
    expect(res.statusCode, res.body).toBe(204);
    expect(h.sim.device('DEVA1')!.profile_uuid).toBe(profile.appleProfileUuid);
    expect(h.sim.device('DEVA2')!.profile_uuid).toBe(profile.appleProfileUuid);
    for (const s of ['DEVA3', 'DEVA4', 'DEVA5', 'DEVA6', 'MACA1', 'FOREIGN1']) expect(h.sim.device(s)!.profile_uuid).toBeUndefined();
    const now = h.clock.now().toISOString();
    expect(await bySerial('DEVA1')).toMatchObject({
      requestedEnrollmentProfileId: profile.id,
      requestedEnrollmentProfileAssignmentDateTime: now,
      effectiveEnrollmentProfileId: profile.id,
      appleAssignmentResult: 'SUCCESS',
      appleAssignmentDateTime: now,
      deviceStatus: 'readyToEnroll',
    });
    const audit = (await h.ok({ method: 'GET', url: `/beta/deviceManagement/auditEvents?$filter=activity eq 'Assign ADE enrollment profile to devices'` })).value;
    expect(audit[0].resources[0].modifiedProperties).toEqual([{ displayName: 'deviceIds', oldValue: null, newValue: '["DEVA1","DEVA2"]' }]);
  });

  it('refuses unknown serials, released devices and another platform\'s devices, naming them, and assigns nothing', async () => {
    const before = await bySerial('DEVA3');
    let res = await assign(profile.id, ['DEVA3', 'NOPE1', 'NOPE2']);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ target: 'deviceIds' });
    expect(res.json().error.message).toMatch(/NOPE1, NOPE2 are not devices of this enrollment program token\. Nothing was assigned\./);
    res = await assign(profile.id, ['MACA1']);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/MACA1 is a macOS device and the profile is for iOS\/iPadOS/);
    expect(await bySerial('DEVA3')).toEqual(before);
    expect(h.sim.device('DEVA3')!.profile_uuid).toBeUndefined();
    expect((await assign(`${tokenId}_00000000-0000-4000-8000-000000000000`, ['DEVA3'])).statusCode).toBe(404);
    expect((await h.request({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles/${profile.id}/updateDeviceProfileAssignment`, payload: { deviceIds: [] } })).statusCode).toBe(400);
  });

  it('records NOT_ACCESSIBLE for a serial on another MDM server, and shows it', async () => {
    const imported = await h.ok({ method: 'POST', url: url(), payload: { serialNumber: 'FOREIGN1', platform: 'ios' } }, 201);
    expect(imported).toMatchObject({ serialNumber: 'FOREIGN1', discoverySource: 'adminImport', deviceStatus: 'notContacted', enrollmentState: 'notContacted' });
    expect((await assign(profile.id, ['FOREIGN1'])).statusCode).toBe(204);
    expect(await bySerial('FOREIGN1')).toMatchObject({ appleAssignmentResult: 'NOT_ACCESSIBLE', deviceStatus: 'notContacted', requestedEnrollmentProfileId: profile.id });
    expect(await serialsOf("appleAssignmentResult eq 'NOT_ACCESSIBLE'")).toEqual(['FOREIGN1']);
    expect(h.sim.device('FOREIGN1')!.profile_uuid).toBeUndefined();
  });

  it('leaves THROTTLED and transiently failed devices to the durable assign job, which completes them', async () => {
    h.sim.setAssignmentOutcome(['DEVA3'], 'THROTTLED', 60);
    expect((await assign(profile.id, ['DEVA3'])).statusCode).toBe(204);
    expect(await bySerial('DEVA3')).toMatchObject({ appleAssignmentResult: 'THROTTLED', deviceStatus: 'assigned' });
    h.sim.injectFault({ method: 'POST', path: '/profile/devices', status: 503, times: Infinity });
    try {
      expect((await assign(profile.id, ['DEVA4'])).statusCode).toBe(204);
      expect(await bySerial('DEVA4')).toMatchObject({ appleAssignmentResult: 'PENDING', deviceStatus: 'assigned' });
    } finally {
      h.sim.clearFaults();
      h.sim.setAssignmentOutcome(['DEVA3'], null);
    }
    h.clock.advance(2 * MINUTE);
    await h.drain();
    for (const s of ['DEVA3', 'DEVA4']) {
      expect(h.sim.device(s)!.profile_uuid).toBe(profile.appleProfileUuid);
      expect(await bySerial(s)).toMatchObject({ appleAssignmentResult: 'SUCCESS', deviceStatus: 'readyToEnroll' });
    }
  });

  it('imports serial lists with a result per item', async () => {
    const guid = profile.id.slice(tokenId.length + 1);
    const second = await h.connectedToken('Second token');
    h.sim.addDevices([{ serial_number: 'OTHERTOK1', model: 'iPhone 15' }]);
    h.sim.assignDevicesToServer(second.serverUuid, { serials: ['OTHERTOK1'] });
    await h.drain();
    const items = [
      { '@odata.type': '#microsoft.graph.importedAppleDeviceIdentity', serialNumber: 'newimp1', requestedEnrollmentProfileId: guid, description: 'Spare', isSupervised: true, discoverySource: 'adminImport' },
      { serialNumber: 'NEWIMP1' },
      { serialNumber: 'BAD.SERIAL' },
      { serialNumber: 'BAD-1' },
      { serialNumber: '' },
      { serialNumber: 'OTHERTOK1' },
      { serialNumber: 'DEVA5', description: 'Not overwritten' },
      { serialNumber: 'NEWIMP2', requestedEnrollmentProfileId: 'not-a-profile' },
      { serialNumber: 'NEWIMP3', platform: 'android' },
      { serialNumber: 'NEWIMP4', platform: 'macOS' },
    ];
    const res = await h.ok({ method: 'POST', url: url('/microsoft.graph.importAppleDeviceIdentityList'), payload: { importedAppleDeviceIdentities: items, overwriteImportedDeviceIdentities: false } });
    expect(res['@odata.context']).toBe('https://openenroll.test/beta/$metadata#Collection(microsoft.graph.importedAppleDeviceIdentityResult)');
    expect(res.value.map((r: Json) => r.status)).toEqual([true, false, false, false, false, false, false, false, false, true]);
    expect(res.value.every((r: Json) => r['@odata.type'] === '#microsoft.graph.importedAppleDeviceIdentityResult')).toBe(true);
    const messages = res.value.map((r: Json) => r['status@openEnroll.message'] ?? null);
    expect(messages).toEqual([
      null,
      "serialNumber 'NEWIMP1' repeats item 1; only the first is imported.",
      "serialNumber 'BAD.SERIAL' must not contain a period.",
      "serialNumber 'BAD-1' must contain only letters and digits.",
      "serialNumber '' is required.",
      "serialNumber 'OTHERTOK1' is already a device of another enrollment program token.",
      "serialNumber 'DEVA5' is already imported; set overwriteImportedDeviceIdentities to true to update it.",
      "requestedEnrollmentProfileId 'not-a-profile' is not an enrollment profile of this enrollment program token.",
      "platform 'android' is not one of unknown, ios, macOS.",
      null,
    ]);
    expect(res.value[0]).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      serialNumber: 'NEWIMP1',
      requestedEnrollmentProfileId: profile.id,
      description: 'Spare',
      // The platform of the chosen profile; supervision is Apple's to say.
      platform: 'ios',
      isSupervised: false,
      discoverySource: 'adminImport',
      enrollmentState: 'notContacted',
      // Apple was asked at once: not on our MDM server (yet).
      appleAssignmentResult: 'NOT_ACCESSIBLE',
      status: true,
    });
    expect(res.value[2]).toMatchObject({ id: null, serialNumber: 'BAD.SERIAL', status: false });
    expect(await bySerial('DEVA5')).toMatchObject({ description: 'IPHONE 15' });

    const overwrite = await h.ok({ method: 'POST', url: url('/importAppleDeviceIdentityList'), payload: { importedAppleDeviceIdentities: [{ serialNumber: 'deva5', description: 'Front desk', platform: 'macOS' }], overwriteImportedDeviceIdentities: true } });
    // Apple's platform stays; the source stays the sync.
    expect(overwrite.value[0]).toMatchObject({ status: true, serialNumber: 'DEVA5', description: 'Front desk', platform: 'ios', discoverySource: 'deviceEnrollmentProgram' });
    expect((await h.request({ method: 'POST', url: url(), payload: { serialNumber: 'NEWIMP4' } })).statusCode).toBe(409);
    expect((await h.request({ method: 'POST', url: url(), payload: { serialNumber: 'A.B' } })).statusCode).toBe(400);
  });

  it('filters on Graph properties (profile ids as GUIDs or full ids, enums regardless of case) and on status', async () => {
    const guid = profile.id.slice(tokenId.length + 1);
    expect(await serialsOf("serialNumber eq 'deva1'")).toEqual(['DEVA1']);
    expect(await serialsOf("startswith(serialNumber,'newimp')")).toEqual(['NEWIMP1', 'NEWIMP4']);
    expect(await serialsOf("discoverySource eq 'AdminImport'")).toEqual(['FOREIGN1', 'NEWIMP1', 'NEWIMP4']);
    const requested = ['DEVA1', 'DEVA2', 'DEVA3', 'DEVA4', 'FOREIGN1', 'NEWIMP1'];
    expect(await serialsOf(`requestedEnrollmentProfileId eq '${guid}'`)).toEqual(requested);
    expect(await serialsOf(`requestedEnrollmentProfileId eq '${profile.id}'`)).toEqual(requested);
    expect(await serialsOf(`discoverySource eq 'adminImport' and requestedEnrollmentProfileId eq '${guid}'`)).toEqual(['FOREIGN1', 'NEWIMP1']);
    expect(await serialsOf(`effectiveEnrollmentProfileId eq '${guid}'`)).toEqual(requested);
    expect(await serialsOf("platform eq 'macOS'")).toEqual(['MACA1', 'NEWIMP4']);
    expect(await serialsOf("deviceStatus eq 'missingProfile'")).toEqual(['DEVA5', 'DEVA6', 'MACA1']);
    expect(await serialsOf("deviceStatus eq 'notContacted'")).toEqual(['FOREIGN1', 'NEWIMP1', 'NEWIMP4']);
    expect(await serialsOf("deviceStatus eq 'readyToEnroll'")).toEqual(['DEVA1', 'DEVA2', 'DEVA3', 'DEVA4']);
    expect(await serialsOf("enrollmentState eq 'notContacted' and isDeleted eq false and isSupervised eq false")).toHaveLength(10);
    expect((await h.request({ method: 'GET', url: url(`/$count?$filter=${encodeURIComponent("deviceStatus eq 'readyToEnroll'")}`) })).body).toBe('4');
    expect((await h.request({ method: 'GET', url: url(`?$filter=${encodeURIComponent("deviceStatus eq 'lost'")}`) })).statusCode).toBe(400);

    // The token shows the same counts.
    const token = await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}?$select=deviceStatusCounts` });
    expect(token.deviceStatusCounts).toEqual({ notContacted: 3, missingProfile: 3, assigned: 0, readyToEnroll: 4, enrolled: 0, removedFromAbm: 0 });
  });

  it('patches description and the requested profile (null: back to the token default)', async () => {
    const d = await bySerial('DEVA6');
    const patched = await h.ok({ method: 'PATCH', url: url(`/${d.id}`), payload: { ...d, description: 'Kiosk', requestedEnrollmentProfileId: profile.id } });
    expect(patched).toMatchObject({ description: 'Kiosk', requestedEnrollmentProfileId: profile.id, deviceStatus: 'readyToEnroll' });
    expect(h.sim.device('DEVA6')!.profile_uuid).toBe(profile.appleProfileUuid);
    const fallback = await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles`, payload: { '@odata.type': IOS, displayName: 'Fallback' } }, 201);
    await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles/${fallback.id}/setDefaultProfile` }, 204);
    // The admin's choice wins over the default.
    expect(h.sim.device('DEVA6')!.profile_uuid).toBe(profile.appleProfileUuid);
    const cleared = await h.ok({ method: 'PATCH', url: url(`/${d.id}`), payload: { requestedEnrollmentProfileId: null } });
    expect(cleared).toMatchObject({ requestedEnrollmentProfileId: null, effectiveEnrollmentProfileId: fallback.id, deviceStatus: 'readyToEnroll' });
    expect(h.sim.device('DEVA6')!.profile_uuid).toBe(fallback.appleProfileUuid);
    const bad = await h.request({ method: 'PATCH', url: url(`/${d.id}`), payload: { requestedEnrollmentProfileId: 'nope' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.target).toBe('requestedEnrollmentProfileId');
    const mac = await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles`, payload: { '@odata.type': MAC, displayName: 'Macs' } }, 201);
    const wrong = await h.request({ method: 'PATCH', url: url(`/${d.id}`), payload: { requestedEnrollmentProfileId: mac.id } });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error.message).toMatch(/DEVA6 is an iOS\/iPadOS device and the profile is for macOS/);
  });

  it('gives devices new at Apple the default profile when the sync brings them (the AdeAssigner)', async () => {
    h.sim.addDevices([{ serial_number: 'LATE1', model: 'iPhone 15' }]);
    h.sim.assignDevicesToServer(serverUuid, { serials: ['LATE1'] });
    h.clock.advance(16 * MINUTE);
    await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/syncWithAppleDeviceEnrollmentProgram` }, 204);
    await h.drain();
    const defaultProfile = await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}/defaultIosEnrollmentProfile` });
    expect(h.sim.device('LATE1')!.profile_uuid).toBe(defaultProfile.appleProfileUuid);
    expect(await bySerial('LATE1')).toMatchObject({ deviceStatus: 'readyToEnroll', effectiveEnrollmentProfileId: defaultProfile.id, requestedEnrollmentProfileId: null });
  });

  it('shows released devices as removedFromAbm and isDeleted', async () => {
    h.sim.releaseDevices(['DEVA2']);
    h.clock.advance(16 * MINUTE);
    await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/syncWithAppleDeviceEnrollmentProgram` }, 204);
    await h.drain();
    expect(await bySerial('DEVA2')).toMatchObject({ deviceStatus: 'removedFromAbm', isDeleted: true, removedFromAppleDateTime: expect.any(String) });
    expect(await serialsOf('isDeleted eq true')).toEqual(['DEVA2']);
    const res = await assign(profile.id, ['DEVA2']);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/DEVA2 was released from Apple Business Manager/);
  });

  it('deletes: a device Apple still holds is hidden until the next full sync; others are deleted', async () => {
    const held = await bySerial('DEVA5');
    const imported = await bySerial('NEWIMP4');
    const released = await bySerial('DEVA2');
    for (const d of [held, imported, released]) await h.ok({ method: 'DELETE', url: url(`/${d.id}`) }, 204);
    for (const d of [held, imported, released]) await h.ok({ method: 'GET', url: url(`/${d.id}`) }, 404);
    expect(await serialsOf("serialNumber eq 'DEVA5' or serialNumber eq 'NEWIMP4' or serialNumber eq 'DEVA2'")).toEqual([]);
    const rows = await h.t.store.db.selectFrom('dep_devices').select(['serial_number', 'deleted_at']).where('serial_number', 'in', ['DEVA5', 'NEWIMP4', 'DEVA2']).execute();
    expect(rows).toEqual([{ serial_number: 'DEVA5', deleted_at: h.clock.now().toISOString() }]);
    await h.ok({ method: 'DELETE', url: url(`/${held.id}`) }, 404);

    // A week later the periodic full sync lists it again.
    h.clock.advance(7 * DAY);
    await h.drain();
    expect(await bySerial('DEVA5')).toMatchObject({ id: held.id, serialNumber: 'DEVA5' });
  });
});

describe('ADE devices and profiles inherit their token\'s scope tags', () => {
  let h: AdeHarness;
  beforeAll(async () => {
    h = await adeHarness();
  });
  afterAll(async () => h.close());

  it('shows a scoped administrator only tokens in its scope, with their profiles and devices', async () => {
    const tag = await h.ok({ method: 'POST', url: '/beta/deviceManagement/roleScopeTags', payload: { displayName: 'Schools' } }, 201);
    const scoped = await h.t.createKey('scopedAdministrator', [tag.id]);
    const reader = await h.t.createKey('readOnlyOperator');
    const { tokenId: hidden } = await h.connectedToken('Head office');
    const profile = await h.ok({ method: 'POST', url: `${TOKENS}/${hidden}/enrollmentProfiles`, payload: { '@odata.type': IOS, displayName: 'Head office' } }, 201);
    await h.ok({ method: 'POST', url: `${TOKENS}/${hidden}/importedAppleDeviceIdentities`, payload: { serialNumber: 'HQ1' } }, 201);

    // The scoped admin's own token gets its tags.
    const mine = await h.ok({ method: 'POST', url: TOKENS, key: scoped, payload: { dataSharingConsentGranted: true, tokenName: 'School' } }, 201);
    expect(mine.roleScopeTagIds).toEqual([tag.id]);
    expect((await h.ok({ method: 'GET', url: TOKENS, key: scoped })).value.map((t: Json) => t.id)).toEqual([mine.id]);
    expect((await h.request({ method: 'GET', url: `${TOKENS}/$count`, key: scoped })).body).toBe('1');
    for (const path of ['', '/enrollmentProfiles', `/enrollmentProfiles/${profile.id}`, '/importedAppleDeviceIdentities', '/defaultIosEnrollmentProfile', '/getEncryptionPublicKey()']) {
      const res = await h.request({ method: 'GET', url: `${TOKENS}/${hidden}${path}`, key: scoped });
      expect(res.statusCode, path).toBe(404);
    }
    for (const [method, path, payload] of [
      ['PATCH', '', { tokenName: 'Mine now' }],
      ['DELETE', '', undefined],
      ['POST', '/enrollmentProfiles', { '@odata.type': IOS, displayName: 'Sneaky' }],
      ['POST', '/importedAppleDeviceIdentities', { serialNumber: 'SNEAKY1' }],
      ['POST', '/generateEncryptionPublicKey', undefined],
      ['POST', `/enrollmentProfiles/${profile.id}/setDefaultProfile`, undefined],
    ] as const) {
      const res = await h.request({ method, url: `${TOKENS}/${hidden}${path}`, key: scoped, ...(payload ? { payload } : {}) });
      expect(res.statusCode, `${method} ${path}`).toBe(404);
    }
    // Profiles and devices follow the token: tagging it brings them into scope.
    await h.ok({ method: 'PATCH', url: `${TOKENS}/${hidden}`, payload: { roleScopeTagIds: ['0', tag.id] } });
    expect((await h.ok({ method: 'GET', url: `${TOKENS}/${hidden}/enrollmentProfiles`, key: scoped })).value.map((p: Json) => p.id)).toEqual([profile.id]);
    expect((await h.ok({ method: 'GET', url: `${TOKENS}/${hidden}/importedAppleDeviceIdentities`, key: scoped })).value.map((d: Json) => d.serialNumber)).toEqual(['HQ1']);
    // A scoped admin can't hand out tags it doesn't hold, and keeps the ones it can't see.
    const res = await h.request({ method: 'PATCH', url: `${TOKENS}/${hidden}`, key: scoped, payload: { roleScopeTagIds: [tag.id] } });
    expect(res.statusCode).toBe(200);
    expect(res.json().roleScopeTagIds).toEqual(['0', tag.id]);
    expect((await h.request({ method: 'PATCH', url: `${TOKENS}/${hidden}`, key: scoped, payload: { roleScopeTagIds: ['0'] } })).statusCode).toBe(403);

    // Read-only operators read; they can't write, nor generate a public key by reading one.
    const keyless = await h.createToken();
    const noKey = await h.request({ method: 'GET', url: `${TOKENS}/${keyless}/getEncryptionPublicKey()`, key: reader });
    expect(noKey.statusCode).toBe(403);
    expect(noKey.json().error.message).toMatch(/generating one needs enrollment.write/);
    expect((await h.request({ method: 'GET', url: `${TOKENS}/${hidden}/importedAppleDeviceIdentities`, key: reader })).statusCode).toBe(200);
    for (const [method, path] of [
      ['POST', ''],
      ['POST', `/${hidden}/uploadDepToken`],
      ['POST', `/${hidden}/enrollmentProfiles`],
      ['DELETE', `/${hidden}`],
    ] as const) {
      expect((await h.request({ method, url: `${TOKENS}${path}`, key: reader, payload: {} })).statusCode, `${method} ${path}`).toBe(403);
    }
  });

  it('keeps tenants apart', async () => {
    const { tokenId } = await h.connectedToken('Tenant A');
    const p = await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles`, payload: { '@odata.type': IOS, displayName: 'Tenant A' } }, 201);
    const d = await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/importedAppleDeviceIdentities`, payload: { serialNumber: 'TENANTA1' } }, 201);
    const other = await h.t.createTenant('Tenant B');
    expect((await h.request({ method: 'GET', url: TOKENS, key: other.adminKey })).json().value).toEqual([]);
    for (const path of [`/${tokenId}`, `/${tokenId}/enrollmentProfiles/${p.id}`, `/${tokenId}/importedAppleDeviceIdentities/${d.id}`]) {
      expect((await h.request({ method: 'GET', url: `${TOKENS}${path}`, key: other.adminKey })).statusCode, path).toBe(404);
      expect((await h.request({ method: 'DELETE', url: `${TOKENS}${path}`, key: other.adminKey })).statusCode, path).toBe(404);
    }
    // B can't import A's serial into a token of its own? It can: serials are unique per tenant only.
    const bToken = await h.request({ method: 'POST', url: TOKENS, key: other.adminKey, payload: { dataSharingConsentGranted: true } });
    const imported = await h.request({ method: 'POST', url: `${TOKENS}/${bToken.json().id}/importedAppleDeviceIdentities`, key: other.adminKey, payload: { serialNumber: 'TENANTA1' } });
    expect(imported.statusCode).toBe(201);
  });
});
