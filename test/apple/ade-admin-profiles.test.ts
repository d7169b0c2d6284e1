import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adeEnrollmentUrls, PROFILE_DEFINE_JOB } from '../../src/apple/ade/admin/assignment.js';
import { ADE_LIMITS } from '../../src/apple/ade/admin/model.js';
import { defaultSettings, settingsJson, storedProfileFromRow, toAppleProfile } from '../../src/apple/ade/profiles/index.js';
import { MINUTE } from '../../src/shared/time.js';
import { adeHarness, PUBLIC_URL, TOKENS, type AdeHarness } from '../helpers/apple.js';

/** A Graph JSON body. */
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** enrollmentProfiles under a token: validation, Apple definitions, defaults, revisions, limits. */

const IOS = '#microsoft.graph.depIOSEnrollmentProfile';
const MAC = '#microsoft.graph.depMacOSEnrollmentProfile';

describe('ADE enrollment profiles', () => {
  let h: AdeHarness;
  let tokenId: string;
  let serverUuid: string;
  const url = (path = '') => `${TOKENS}/${tokenId}/enrollmentProfiles${path}`;
  const devicesUrl = (path = '') => `${TOKENS}/${tokenId}/importedAppleDeviceIdentities${path}`;
  const row = (id: string) => h.t.store.db.selectFrom('dep_profiles').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const deviceBySerial = async (serial: string) => (await h.ok({ method: 'GET', url: devicesUrl(`?$filter=serialNumber eq '${serial}'`) })).value[0];

  beforeAll(async () => {
    h = await adeHarness();
    ({ tokenId, serverUuid } = await h.connectedToken('Profiles'));
    h.sim.addDevices([
      { serial_number: 'IPHONEA1', model: 'iPhone 15' },
      { serial_number: 'IPHONEA2', model: 'iPhone 15' },
      { serial_number: 'IPHONEA3', model: 'iPhone 15' },
      { serial_number: 'MACBOOK1', model: 'MacBook Air (M2, 2022)', device_family: 'Mac', os: 'OSX' },
    ]);
    h.sim.assignDevicesToServer(serverUuid, { serials: ['IPHONEA1', 'IPHONEA2', 'IPHONEA3', 'MACBOOK1'] });
    await h.drain();
  });
  afterAll(async () => h.close());

  it('creates an iOS profile, defines it at Apple exactly as toAppleProfile says, and returns the Graph entity', async () => {
    const created = await h.ok(
      {
        method: 'POST',
        url: url(),
        payload: {
          '@odata.type': IOS,
          displayName: 'Corporate iPhones',
          description: 'Supervised, modern authentication',
          requiresUserAuthentication: true,
          configurationWebUrl: true,
          supportDepartment: 'IT',
          supportPhoneNumber: '+1 555 0100',
          locationDisabled: true,
          siriDisabled: true,
          deviceNameTemplate: '{{DEVICETYPE}}-{{SERIAL}}',
        },
      },
      201,
    );
    expect(created.id).toMatch(new RegExp(`^${tokenId}_[0-9a-f-]{36}$`));
    expect(created['@odata.type']).toBe(IOS);
    expect(created['@odata.context']).toBe(`https://openenroll.test/beta/$metadata#deviceManagement/depOnboardingSettings('${tokenId}')/enrollmentProfiles/$entity`);
    expect(created).toMatchObject({ displayName: 'Corporate iPhones', isDefault: false, enabledSkipKeys: expect.arrayContaining(['Location', 'Siri']), revision: 1, appleSyncError: null });
    expect(created.appleProfileUuid).toMatch(/^[0-9A-F]{32}$/);

    const stored = await row(created.id);
    const expected = toAppleProfile(storedProfileFromRow(stored, false), { ...adeEnrollmentUrls(PUBLIC_URL, h.t.tenantId, created.id), orgMagic: h.t.tenantId });
    const atApple = h.sim.profile(created.appleProfileUuid)!;
    expect(atApple).toMatchObject({ ...expected, profile_uuid: created.appleProfileUuid });
    // Anything else is a default Apple fills in.
    expect(Object.keys(atApple).filter((k) => !(k in expected))).toEqual(['auto_advance_setup', 'profile_uuid']);
    expect(expected.url).toBe(`https://openenroll.test/enroll/apple/ade/${h.t.tenantId}/${created.id}`);
    expect(expected.configuration_web_url).toBe(`${expected.url}/web`);

    expect(await h.ok({ method: 'GET', url: url(`/${created.id}`) })).toEqual(created);
    const listed = await h.ok({ method: 'GET', url: url(`?$filter=displayName eq 'corporate iphones'&$select=id,displayName,supervisedModeEnabled&$count=true`) });
    expect(listed['@odata.count']).toBe(1);
    expect(listed.value).toEqual([{ '@odata.type': IOS, id: created.id, displayName: 'Corporate iPhones', supervisedModeEnabled: true }]);
    expect((await h.request({ method: 'GET', url: url('/$count') })).body).toBe('1');
  });

  it('keeps the macOS admin password in the secrets table and returns it as null', async () => {
    const created = await h.ok(
      { method: 'POST', url: url(), payload: { '@odata.type': MAC, displayName: 'Macs', adminAccountUserName: 'itadmin', adminAccountFullName: 'IT Admin', adminAccountPassword: 'Correct-Horse-1' } },
      201,
    );
    expect(created.adminAccountPassword).toBeNull();
    const stored = await row(created.id);
    expect(stored.settings).not.toContain('Correct-Horse-1');
    expect(await h.t.app.core.secrets.getText(h.t.store.db, h.t.tenantId, stored.admin_password_secret_id!)).toBe('Correct-Horse-1');
    // Sending back the null keeps it; a new one replaces it and bumps the revision (it reaches Macs at their next setup).
    const echoed = await h.ok({ method: 'PATCH', url: url(`/${created.id}`), payload: { ...created, '@odata.context': undefined } });
    expect(echoed.revision).toBe(1);
    const changed = await h.ok({ method: 'PATCH', url: url(`/${created.id}`), payload: { adminAccountPassword: 'Battery-Staple-2' } });
    expect(changed.revision).toBe(2);
    expect(await h.t.app.core.secrets.getText(h.t.store.db, h.t.tenantId, stored.admin_password_secret_id!)).toBe('Battery-Staple-2');
    const audit = (await h.ok({ method: 'GET', url: `/beta/deviceManagement/auditEvents?$filter=resources/resourceId eq '${created.id}'` })).value;
    expect(JSON.stringify(audit)).not.toMatch(/Correct-Horse|Battery-Staple/);
    // Removing the admin account removes its password.
    await h.ok({ method: 'PATCH', url: url(`/${created.id}`), payload: { adminAccountUserName: null } });
    expect((await row(created.id)).admin_password_secret_id).toBeNull();
    expect(await h.t.store.db.selectFrom('secrets').select('id').where('id', '=', stored.admin_password_secret_id!).execute()).toEqual([]);
  });

  it('surfaces the profile rules as 400s naming the property', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ displayName: 'No type' }, '@odata.type', /is required/],
      [{ '@odata.type': '#microsoft.graph.enrollmentProfile', displayName: 'Configurator' }, '@odata.type', /must be/],
      [{ '@odata.type': IOS }, 'displayName', /is required/],
      [{ '@odata.type': IOS, displayName: 'x'.repeat(126) }, 'displayName', /.+/],
      [{ '@odata.type': IOS, displayName: 'Locked', profileRemovalDisabled: true, supervisedModeEnabled: false }, 'profileRemovalDisabled', /.+/],
      [{ '@odata.type': IOS, displayName: 'Name', deviceNameTemplate: `${'x'.repeat(54)}{{SERIAL}}` }, 'deviceNameTemplate', /63 characters/],
      [{ '@odata.type': IOS, displayName: 'Shared', enableSharedIPad: true, requiresUserAuthentication: true }, 'enableSharedIPad', /.+/],
      [{ '@odata.type': IOS, displayName: 'Grace', passcodeLockGracePeriodInSeconds: 14_401 }, 'passcodeLockGracePeriodInSeconds', /.+/],
      [{ '@odata.type': IOS, displayName: 'Unknown', colour: 'blue' }, 'colour', /not a known property/],
      [{ '@odata.type': MAC, displayName: 'Mac', adminAccountPassword: 'short' }, 'adminAccountPassword', /.+/],
    ];
    const before = (await h.ok({ method: 'GET', url: url('?$count=true') }))['@odata.count'];
    for (const [payload, target, message] of cases) {
      const res = await h.request({ method: 'POST', url: url(), payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.target, JSON.stringify(res.json())).toBe(target);
      expect(res.json().error.message).toMatch(message);
    }
    expect((await h.ok({ method: 'GET', url: url('?$count=true') }))['@odata.count']).toBe(before);
    const some = (await h.ok({ method: 'GET', url: url() })).value[0];
    const patch = await h.request({ method: 'PATCH', url: url(`/${some.id}`), payload: { '@odata.type': some['@odata.type'] === IOS ? MAC : IOS } });
    expect(patch.statusCode).toBe(400);
    expect(patch.json().error.message).toMatch(/type can't be changed/);
  });

  it('setDefaultProfile makes it the default and pushes it to devices of its platform without a choice', async () => {
    const p = await h.ok({ method: 'POST', url: url(), payload: { '@odata.type': IOS, displayName: 'Default phones' } }, 201);
    await h.ok({ method: 'POST', url: url(`/${p.id}/microsoft.graph.setDefaultProfile`) }, 204);
    expect((await h.ok({ method: 'GET', url: url(`/${p.id}`) })).isDefault).toBe(true);
    for (const s of ['IPHONEA1', 'IPHONEA2', 'IPHONEA3']) {
      expect(h.sim.device(s)!.profile_uuid).toBe(p.appleProfileUuid);
      expect(await deviceBySerial(s)).toMatchObject({ deviceStatus: 'readyToEnroll', appleAssignmentResult: 'SUCCESS', effectiveEnrollmentProfileId: p.id, requestedEnrollmentProfileId: null });
    }
    // The Mac has no default of its platform yet.
    expect(h.sim.device('MACBOOK1')!.profile_uuid).toBeUndefined();
    expect(await deviceBySerial('MACBOOK1')).toMatchObject({ deviceStatus: 'missingProfile', effectiveEnrollmentProfileId: null });
    // Another default replaces it; the first isn't the default Json more.
    const q = await h.ok({ method: 'POST', url: url(), payload: { '@odata.type': IOS, displayName: 'Default phones 2' } }, 201);
    await h.ok({ method: 'POST', url: url(`/${q.id}/setDefaultProfile`) }, 204);
    expect((await h.ok({ method: 'GET', url: url(`/${p.id}`) })).isDefault).toBe(false);
    expect(h.sim.device('IPHONEA1')!.profile_uuid).toBe(q.appleProfileUuid);
    expect((await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}/defaultIosEnrollmentProfile` })).id).toBe(q.id);
  });

  it('defines a changed profile anew, re-assigns its devices, and marks enrolled devices pendingReset unless only the name template changed', async () => {
    const p = await h.ok({ method: 'POST', url: url(), payload: { '@odata.type': IOS, displayName: 'Revisions' } }, 201);
    await h.ok({ method: 'POST', url: url(`/${p.id}/updateDeviceProfileAssignment`), payload: { deviceIds: ['IPHONEA2', 'iphonea3'] } }, 204);
    expect(h.sim.device('IPHONEA2')!.profile_uuid).toBe(p.appleProfileUuid);
    // IPHONEA3 enrolled with revision 1 (what the enrollment endpoint records).
    await h.t.store.db.updateTable('dep_devices').set({ enrollment_state: 'enrolled', enrolled_profile_id: p.id, enrolled_profile_revision: 1 }).where('serial_number', '=', 'IPHONEA3').execute();
    expect(await deviceBySerial('IPHONEA3')).toMatchObject({ enrollmentState: 'enrolled', deviceStatus: 'enrolled' });

    // Only the device name template: same Apple profile, same revision, still enrolled.
    const named = await h.ok({ method: 'PATCH', url: url(`/${p.id}`), payload: { deviceNameTemplate: 'Corp-{{SERIAL}}' } });
    expect(named).toMatchObject({ appleProfileUuid: p.appleProfileUuid, revision: 1, deviceNameTemplate: 'Corp-{{SERIAL}}' });
    expect((await deviceBySerial('IPHONEA3')).enrollmentState).toBe('enrolled');

    // A setting devices get at setup: a new Apple profile, devices moved to it, a new revision.
    const changed = await h.ok({ method: 'PATCH', url: url(`/${p.id}`), payload: { '@odata.type': IOS, passCodeDisabled: true } });
    expect(changed.revision).toBe(2);
    expect(changed.appleProfileUuid).not.toBe(p.appleProfileUuid);
    expect(h.sim.profile(changed.appleProfileUuid)!.skip_setup_items).toContain('Passcode');
    expect(h.sim.device('IPHONEA2')!.profile_uuid).toBe(changed.appleProfileUuid);
    expect(h.sim.device('IPHONEA3')!.profile_uuid).toBe(changed.appleProfileUuid);
    expect(await deviceBySerial('IPHONEA3')).toMatchObject({ enrollmentState: 'pendingReset', deviceStatus: 'enrolled' });
    expect(await deviceBySerial('IPHONEA2')).toMatchObject({ deviceStatus: 'readyToEnroll', enrollmentState: 'notContacted' });
    expect((await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}/importedAppleDeviceIdentities?$filter=enrollmentState eq 'pendingReset'&$select=serialNumber` })).value).toEqual([
      { '@odata.type': '#microsoft.graph.importedAppleDeviceIdentity', serialNumber: 'IPHONEA3' },
    ]);

    // The name: Apple shows it (a new profile), enrolled devices aren't affected.
    const renamed = await h.ok({ method: 'PATCH', url: url(`/${p.id}`), payload: { displayName: 'Revisions (renamed)' } });
    expect(renamed.revision).toBe(2);
    expect(renamed.appleProfileUuid).not.toBe(changed.appleProfileUuid);
    expect(h.sim.profile(renamed.appleProfileUuid)!.profile_name).toBe('Revisions (renamed)');
    // Re-enrolled with revision 2: enrolled again.
    await h.t.store.db.updateTable('dep_devices').set({ enrolled_profile_revision: 2 }).where('serial_number', '=', 'IPHONEA3').execute();
    expect((await deviceBySerial('IPHONEA3')).enrollmentState).toBe('enrolled');
  });

  it('saves the profile when Apple fails, shows the error, and a durable job defines it later', async () => {
    h.sim.injectFault({ method: 'POST', path: '/profile', status: 503, times: Infinity });
    let p: Json;
    try {
      p = await h.ok({ method: 'POST', url: url(), payload: { '@odata.type': IOS, displayName: 'Apple down' } }, 201);
      expect(p.appleProfileUuid).toBeNull();
      expect(p.appleSyncError).toMatch(/Apple refused or couldn't take the profile: .*503/);
      const job = await h.t.store.db.selectFrom('jobs').selectAll().where('dedupe_key', '=', `${PROFILE_DEFINE_JOB}:${p.id}`).executeTakeFirstOrThrow();
      expect(job.status).toBe('pending');
      // Devices chosen for it meanwhile wait (PENDING): it can't be assigned before Apple has it.
      await h.ok({ method: 'POST', url: url(`/${p.id}/updateDeviceProfileAssignment`), payload: { deviceIds: ['IPHONEA1'] } }, 204);
      expect(await deviceBySerial('IPHONEA1')).toMatchObject({ appleAssignmentResult: 'PENDING', deviceStatus: 'assigned', requestedEnrollmentProfileId: p.id });
    } finally {
      h.sim.clearFaults();
    }
    h.clock.advance(2 * MINUTE);
    await h.drain();
    const after = await h.ok({ method: 'GET', url: url(`/${p.id}`) });
    expect(after.appleSyncError).toBeNull();
    expect(after.appleProfileUuid).toMatch(/^[0-9A-F]{32}$/);
    expect(h.sim.device('IPHONEA1')!.profile_uuid).toBe(after.appleProfileUuid);
    expect(await deviceBySerial('IPHONEA1')).toMatchObject({ appleAssignmentResult: 'SUCCESS', deviceStatus: 'readyToEnroll' });
  });

  it('deletes a profile only when no device uses it (chosen, or as the default); deleting the default clears it', async () => {
    const p = await h.ok({ method: 'POST', url: url(), payload: { '@odata.type': MAC, displayName: 'Mac default' } }, 201);
    await h.ok({ method: 'POST', url: url(`/${p.id}/setDefaultProfile`) }, 204);
    expect(h.sim.device('MACBOOK1')!.profile_uuid).toBe(p.appleProfileUuid);
    const refused = await h.request({ method: 'DELETE', url: url(`/${p.id}`) });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toMatch(/1 device uses it \(chosen for them, or as the default profile of the token\)/);
    const other = await h.ok({ method: 'POST', url: url(), payload: { '@odata.type': MAC, displayName: 'Mac explicit' } }, 201);
    await h.ok({ method: 'POST', url: url(`/${other.id}/updateDeviceProfileAssignment`), payload: { deviceIds: ['MACBOOK1'] } }, 204);
    await h.ok({ method: 'DELETE', url: url(`/${p.id}`) }, 204);
    expect(await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}?$expand=defaultMacOsEnrollmentProfile&$select=id` })).toMatchObject({ defaultMacOsEnrollmentProfile: null });
    const blocked = await h.request({ method: 'DELETE', url: url(`/${other.id}`) });
    expect(blocked.statusCode).toBe(409);
    expect(blocked.json().error.message).toMatch(/^The enrollment profile can't be deleted: 1 device uses it\. /);
    await h.ok({ method: 'GET', url: url(`/${p.id}`) }, 404);
  });

  it('re-schedules definitions at start-up for profiles Apple doesn\'t have in their current form', async () => {
    const some = (await h.ok({ method: 'GET', url: url() })).value[0];
    await h.t.store.db.deleteFrom('jobs').where('kind', '=', PROFILE_DEFINE_JOB).execute();
    await h.apple.ade.start();
    expect(await h.t.store.db.selectFrom('jobs').select('dedupe_key').where('kind', '=', PROFILE_DEFINE_JOB).execute()).toEqual([]);
    // E.g. OPENENROLL_PUBLIC_URL changed: the Apple JSON differs from what was defined.
    await h.t.store.db.updateTable('dep_profiles').set({ apple_profile_hash: 'old' }).where('id', '=', some.id).execute();
    await h.apple.ade.start();
    const jobs = await h.t.store.db.selectFrom('jobs').select(['dedupe_key', 'run_at']).where('kind', '=', PROFILE_DEFINE_JOB).execute();
    expect(jobs).toEqual([{ dedupe_key: `${PROFILE_DEFINE_JOB}:${some.id}`, run_at: h.clock.now().toISOString() }]);
    await h.drain();
    const after = await h.ok({ method: 'GET', url: url(`/${some.id}`) });
    expect(after.appleProfileUuid).not.toBe(some.appleProfileUuid);
    expect((await row(some.id)).apple_profile_hash).not.toBe('old');
  });

  it('refuses exportMobileConfig on ADE profiles', async () => {
    const some = (await h.ok({ method: 'GET', url: url() })).value[0];
    const res = await h.request({ method: 'GET', url: url(`/${some.id}/exportMobileConfig()`) });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/exportMobileConfig exports Apple Configurator enrollment profiles/);
  });
});

describe('ADE enrollment profiles: limits and tokens without a server token', () => {
  let h: AdeHarness;
  beforeAll(async () => {
    h = await adeHarness();
  });
  afterAll(async () => h.close());

  it(`allows ${ADE_LIMITS.profilesPerToken} profiles per token and refuses the next`, async () => {
    const tokenId = await h.createToken();
    const now = h.clock.now().toISOString();
    const rows = Array.from({ length: ADE_LIMITS.profilesPerToken - 1 }, (_, i) => ({
      id: `${tokenId}_00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      tenant_id: h.t.tenantId,
      token_id: tokenId,
      platform: 'iOS',
      display_name: `Bulk ${i}`,
      settings: settingsJson(defaultSettings('iOS')),
      revision: 1,
      created_at: now,
      updated_at: now,
    }));
    for (let i = 0; i < rows.length; i += 200) await h.t.store.db.insertInto('dep_profiles').values(rows.slice(i, i + 200)).execute();
    const url = `${TOKENS}/${tokenId}/enrollmentProfiles`;
    await h.ok({ method: 'POST', url, payload: { '@odata.type': IOS, displayName: 'The 1,000th' } }, 201);
    expect((await h.request({ method: 'GET', url: `${url}/$count` })).body).toBe('1000');
    const over = await h.request({ method: 'POST', url, payload: { '@odata.type': IOS, displayName: 'One too many' } });
    expect(over.statusCode).toBe(409);
    expect(over.json().error).toMatchObject({ code: 'LimitExceeded' });
    expect(over.json().error.message).toMatch(/at most 1000 enrollment profiles/);
    // Per token.
    const other = await h.createToken();
    await h.ok({ method: 'POST', url: `${TOKENS}/${other}/enrollmentProfiles`, payload: { '@odata.type': IOS, displayName: 'Elsewhere' } }, 201);
  });

  it('defines profiles made before the upload once the server token arrives', async () => {
    const tokenId = await h.createToken();
    const p = await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles`, payload: { '@odata.type': IOS, displayName: 'Early' } }, 201);
    expect(p).toMatchObject({ appleProfileUuid: null, appleSyncError: null });
    await h.publicKey(tokenId);
    const { p7m } = await h.mdmServerFor(tokenId, 'Late upload');
    expect((await h.upload(tokenId, p7m)).statusCode).toBe(204);
    await h.drain();
    const after = await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}/enrollmentProfiles/${p.id}` });
    expect(h.sim.profile(after.appleProfileUuid)).toMatchObject({ profile_name: 'Early' });
  });
});
