import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, MINUTE, SECOND } from '../../src/shared/time.js';
import { clientKey, forgeCsr, pkiMessage, readCertRep } from './scep-support.js';
import { challengeOf, configuratorHarness, profilePlist, PROFILE_TYPE, serialRows, SETTINGS, type ConfiguratorHarness, type Json } from './enrollment-configurator-support.js';

/** Apple Configurator's admin side (-D §9, -E §4; graph §3.2–3.3): profiles, export, direct enrollment, serials. */

const DEVICE_TYPE = '#microsoft.graph.importedAppleDeviceIdentity';

describe('Apple Configurator profiles', () => {
  let h: ConfiguratorHarness;
  const profiles = (path = '') => `${h.setting()}/enrollmentProfiles${path}`;

  beforeAll(async () => {
    h = await configuratorHarness();
  });
  afterAll(() => h.close());

  it('creates a profile under the tenant pseudo setting, with its profile URL (check 49)', async () => {
    const p = await h.profile({ description: 'Shop floor', roleScopeTagIds: ['0'] });
    expect(p).toEqual({
      '@odata.context': `https://openenroll.test/beta/$metadata#deviceManagement/depOnboardingSettings('${h.tenantId}')/enrollmentProfiles/$entity`,
      '@odata.type': PROFILE_TYPE,
      id: expect.stringMatching(new RegExp(`^${h.tenantId}_[0-9a-f-]{36}$`)),
      displayName: 'Kiosks',
      description: 'Shop floor',
      requiresUserAuthentication: false,
      configurationEndpointUrl: `https://openenroll.test/enroll/apple/configurator/${h.tenantId}/${p.id}`,
      enableAuthenticationViaCompanyPortal: false,
      requireCompanyPortalOnSetupAssistantEnrolledDevices: false,
      roleScopeTagIds: ['0'],
      createdDateTime: h.clock.now().toISOString(),
      lastModifiedDateTime: h.clock.now().toISOString(),
    });
    const got = await h.ok({ method: 'GET', url: profiles(`('${p.id}')`) });
    expect(got.configurationEndpointUrl).toBe(p.configurationEndpointUrl);
    const list = await h.ok({ method: 'GET', url: profiles(`?$filter=displayName eq 'kiosks'&$count=true`) });
    expect(list['@odata.count']).toBe(1);
    expect(list.value[0]).toMatchObject({ '@odata.type': PROFILE_TYPE, id: p.id });
    expect(await h.ok({ method: 'GET', url: profiles('/$count') })).toBe('1');

    // The profile URL is what Configurator's "enrollment URL" fetches: its MDMServiceConfig.
    const res = await h.t.app.server.inject({ method: 'GET', url: new URL(p.configurationEndpointUrl).pathname });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ dep_enrollment_url: p.configurationEndpointUrl, dep_anchor_certs_url: `${p.configurationEndpointUrl}/anchor-certs` });
    const anchors = await h.t.app.server.inject({ method: 'GET', url: `${new URL(p.configurationEndpointUrl).pathname}/anchor-certs` });
    expect(anchors.json()).toEqual([]);
    await h.ok({ method: 'DELETE', url: profiles(`/${p.id}`) }, 204);
    expect((await h.t.app.server.inject({ method: 'GET', url: new URL(p.configurationEndpointUrl).pathname })).statusCode).toBe(404);
  });

  it('validates: name required, Company Portal settings only with user affinity, no ADE types, no unknown properties', async () => {
    const post = (payload: Record<string, unknown>) => h.request({ method: 'POST', url: profiles(), payload });
    const bad = async (payload: Record<string, unknown>, target: string, text?: RegExp) => {
      const res = await post(payload);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error.target).toBe(target);
      if (text) expect(res.json().error.message).toMatch(text);
    };
    await bad({ description: 'no name' }, 'displayName', /required/);
    await bad({ displayName: '   ' }, 'displayName', /Name is required/);
    await bad({ displayName: 'x'.repeat(257) }, 'displayName');
    await bad({ displayName: 'CP', enableAuthenticationViaCompanyPortal: true }, 'enableAuthenticationViaCompanyPortal', /user affinity/);
    await bad({ displayName: 'CP', requireCompanyPortalOnSetupAssistantEnrolledDevices: true }, 'requireCompanyPortalOnSetupAssistantEnrolledDevices');
    await bad({ '@odata.type': '#microsoft.graph.depIOSEnrollmentProfile', displayName: 'ADE' }, '@odata.type', /enrollment program token/);
    await bad({ displayName: 'x', isDefault: true }, 'isDefault');
    const ok = await post({ displayName: 'With user', requiresUserAuthentication: true, enableAuthenticationViaCompanyPortal: true });
    expect(ok.statusCode, ok.body).toBe(201);
    // Turning affinity off while Company Portal authentication is on is refused, not silently cleared.
    const patch = await h.request({ method: 'PATCH', url: profiles(`/${ok.json().id}`), payload: { requiresUserAuthentication: false } });
    expect(patch.statusCode).toBe(400);
    expect(patch.json().error.target).toBe('enableAuthenticationViaCompanyPortal');
  });

  it('PATCH changes the settings, takes back read-only properties, and is audited', async () => {
    const p = await h.profile({ displayName: 'Before' });
    h.clock.advance(MINUTE);
    const { '@odata.context': _ctx, ...sent } = p;
    const patched = await h.ok({ method: 'PATCH', url: profiles(`/${p.id}`), payload: { ...sent, displayName: 'After', requiresUserAuthentication: true } });
    expect(patched).toMatchObject({ displayName: 'After', requiresUserAuthentication: true, createdDateTime: p.createdDateTime, lastModifiedDateTime: h.clock.now().toISOString() });
    const events = await h.t.store.db.selectFrom('audit_events').selectAll().where('tenant_id', '=', h.tenantId).execute();
    expect(events.filter((e) => e.resource_id === p.id).map((e) => e.activity)).toEqual(['Create Apple Configurator profile', 'Patch Apple Configurator profile']);
  });

  it('setDefaultProfile is refused: Configurator profiles have no default', async () => {
    const p = await h.profile();
    const res = await h.request({ method: 'POST', url: profiles(`/${p.id}/setDefaultProfile`) });
    expect(res.statusCode).toBe(400);
  });
});

describe('direct enrollment (exportMobileConfig)', () => {
  let h: ConfiguratorHarness;
  let caPem: string;
  const exportOf = (id: string, query = '') => h.request({ method: 'GET', url: `${h.setting()}/enrollmentProfiles/${id}/exportMobileConfig()${query}` });

  beforeAll(async () => {
    h = await configuratorHarness();
    const ca = await h.t.app.server.inject({ method: 'GET', url: `/scep/${h.tenantId}?operation=GetCACert` });
    const { parseCertificate } = await import('../../src/pki/certificates.js');
    caPem = parseCertificate(ca.rawPayload).pem;
  });
  afterAll(() => h.close());

  /** SCEP PKCSReq with the challenge; the CertRep's status ('0' success, '2' failure). */
  async function scep(challenge: string): Promise<string> {
    const key = await clientKey();
    const msg = pkiMessage(forgeCsr(key, { challenge }), caPem, key);
    const res = await h.t.app.server.inject({ method: 'POST', url: `/scep/${h.tenantId}?operation=PKIOperation`, payload: msg.der, headers: { 'content-type': 'application/x-pki-message' } });
    expect(res.statusCode).toBe(200);
    return readCertRep(res.rawPayload, caPem, { certPem: key.selfSigned.pem, keyPem: key.keyPem }).pkiStatus;
  }

  it('serves a signed .mobileconfig (base64 in value) for a profile without user affinity, as a reusable 14-day intent', async () => {
    const p = await h.profile({ displayName: 'Lab Macs' });
    const res = await exportOf(p.id);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body['@odata.context']).toBe('https://openenroll.test/beta/$metadata#Edm.String');
    const expires = new Date(h.clock.now().getTime() + 14 * DAY).toISOString();
    expect(body['value@openEnroll.expirationDateTime']).toBe(expires);
    const plist = profilePlist(Buffer.from(body.value, 'base64'));
    const mdm = (plist.PayloadContent as Json[]).find((x) => x.PayloadType === 'com.apple.mdm');
    expect(mdm.ServerURL).toBe(`https://openenroll.test/mdm/apple/${h.tenantId}/server`);
    expect(mdm.EnrollmentMode).toBeUndefined();
    const intents = await h.t.store.db.selectFrom('enrollment_intents').selectAll().where('profile_id', '=', p.id).execute();
    expect(intents).toHaveLength(1);
    expect(intents[0]).toMatchObject({
      source: 'configuratorDirect',
      enrollment_type: 'device',
      platform: 'iOS',
      user_id: null,
      ownership: 'company',
      device_enrollment_type: 'appleBulkWithoutUser',
      reusable: 1,
      expires_at: expires,
      serial_number: null,
    });
    const challenges = await h.t.store.db.selectFrom('scep_challenges').selectAll().where('intent_id', '=', intents[0]!.id).execute();
    expect(challenges).toMatchObject([{ reusable: 1, expires_at: expires }]);
    // macOS asks for a Mac profile (OpenEnroll's platform parameter of the function).
    const mac = await exportOf(p.id, "?platform=macOS");
    expect(mac.statusCode).toBe(200);
    expect(profilePlist(Buffer.from(mac.json().value, 'base64')).TargetDeviceType).toBe(5);
    expect((await exportOf(p.id, '?platform=tvOS')).statusCode).toBe(400);
  });

  it('is refused for a profile with user affinity, naming requiresUserAuthentication (check 47)', async () => {
    const p = await h.profile({ displayName: 'Assigned', requiresUserAuthentication: true });
    const before = await h.t.store.db.selectFrom('enrollment_intents').select('id').execute();
    const res = await exportOf(p.id);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.target).toBe('requiresUserAuthentication');
    expect(res.json().error.message).toMatch(/Enroll with user affinity is not supported .*Direct Enrollment/);
    expect(await h.t.store.db.selectFrom('enrollment_intents').select('id').execute()).toHaveLength(before.length);
  });

  it('each download keeps its own 14 days: valid at 13d23h59m, refused after 14 days, not revoked or extended by a new one (check 48)', async () => {
    const p = await h.profile({ displayName: 'Fourteen days' });
    const first = challengeOf(profilePlist(Buffer.from((await exportOf(p.id)).json().value, 'base64')));
    expect(await scep(first)).toBe('0');
    h.clock.advance(10 * DAY);
    const second = challengeOf(profilePlist(Buffer.from((await exportOf(p.id)).json().value, 'base64')));
    h.clock.advance(4 * DAY - MINUTE);
    // Day 13, 23:59: the first download still enrolls devices, again and again.
    expect(await scep(first)).toBe('0');
    expect(await scep(first)).toBe('0');
    h.clock.advance(MINUTE);
    // 14 days after the first download: refused at SCEP; the second (4 days old) still works.
    expect(await scep(first)).toBe('2');
    expect(await scep(second)).toBe('0');
    h.clock.advance(10 * DAY - SECOND);
    expect(await scep(second)).toBe('0');
    h.clock.advance(SECOND);
    expect(await scep(second)).toBe('2');
  });

});

describe('direct enrollment without a push certificate', () => {
  let h: ConfiguratorHarness;
  beforeAll(async () => {
    h = await configuratorHarness({ pushCertificate: false });
  });
  afterAll(() => h.close());

  it('is refused until one is uploaded', async () => {
    const p = await h.profile();
    const res = await h.request({ method: 'GET', url: `${h.setting()}/enrollmentProfiles/${p.id}/exportMobileConfig` });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('PushCertificateRequired');
    expect(await h.t.store.db.selectFrom('enrollment_intents').select('id').execute()).toEqual([]);
  });
});

describe('Apple Configurator serials', () => {
  let h: ConfiguratorHarness;
  let profileId: string;
  let otherProfileId: string;
  const devices = (path = '') => `${h.setting()}/importedAppleDeviceIdentities${path}`;
  const bySerial = async (serial: string) => (await h.ok({ method: 'GET', url: devices(`?$filter=serialNumber eq '${serial}'`) })).value[0];

  beforeAll(async () => {
    h = await configuratorHarness();
    profileId = (await h.profile({ displayName: 'Carts' })).id;
    otherProfileId = (await h.profile({ displayName: 'Library' })).id;
  });
  afterAll(() => h.close());

  it('imports a header-less two-column CSV with a result per row', async () => {
    const res = await h.csv(
      ['F7TLWCLBX196,device details', '', 'f7tlwclbx197,"cart 2, shelf 3"', 'BAD.SERIAL,dotted', 'A1,B,C', 'F7TLWCLBX196,again', 'F7TLWCLBX198', 'BAD SERIAL,space'].join('\n'),
      `?profileId=${profileId}`,
    );
    expect(res.statusCode, res.body).toBe(200);
    const value = res.json().value as Json[];
    expect(value.map((r) => [r.row, r.serialNumber, r.status])).toEqual([
      [1, 'F7TLWCLBX196', 'created'],
      [3, 'F7TLWCLBX197', 'created'],
      [4, 'BAD.SERIAL', 'failed'],
      [5, 'A1', 'failed'],
      [6, 'F7TLWCLBX196', 'failed'],
      [7, 'F7TLWCLBX198', 'created'],
      [8, 'BAD SERIAL', 'failed'],
    ]);
    expect(value[2].error).toMatch(/period/);
    expect(value[3].error).toMatch(/3 columns; expected 2/);
    expect(value[4].error).toMatch(/repeats row 1/);
    expect(value[1]).toMatchObject({ details: 'cart 2, shelf 3', id: expect.any(String), existingDetails: null, error: null });
    const d = await bySerial('F7TLWCLBX197');
    expect(d).toEqual({
      '@odata.type': DEVICE_TYPE,
      id: value[1].id,
      serialNumber: 'F7TLWCLBX197',
      requestedEnrollmentProfileId: profileId,
      requestedEnrollmentProfileAssignmentDateTime: h.clock.now().toISOString(),
      isSupervised: false,
      platform: 'unknown',
      description: 'cart 2, shelf 3',
      discoverySource: 'adminImport',
      createdDateTime: h.clock.now().toISOString(),
      lastContactedDateTime: '0001-01-01T00:00:00Z',
      enrollmentState: 'notContacted',
      isDeleted: false,
    });
  });

  it('keeps existing details unless asked to overwrite them; the profile always applies (check 46)', async () => {
    await h.csv('KEEP0001,first details\nKEEP0002,same', `?profileId=${profileId}`);
    h.clock.advance(MINUTE);
    const kept = (await h.csv('KEEP0001,second details\nKEEP0002,same', `?profileId=${otherProfileId}`)).json().value as Json[];
    expect(kept[0]).toMatchObject({ status: 'updated', details: 'second details', existingDetails: 'first details', error: null });
    expect(kept[1]).toMatchObject({ status: 'updated', existingDetails: null });
    expect(await bySerial('KEEP0001')).toMatchObject({ description: 'first details', requestedEnrollmentProfileId: otherProfileId, requestedEnrollmentProfileAssignmentDateTime: h.clock.now().toISOString() });
    const same = (await h.csv('KEEP0001,second details', `?profileId=${otherProfileId}`)).json().value as Json[];
    expect(same[0]).toMatchObject({ status: 'unchanged', existingDetails: 'first details' });
    const over = (await h.csv('KEEP0001,second details\nKEEP0002,', `?profileId=${otherProfileId}&overwrite=true`)).json().value as Json[];
    expect(over.map((r) => r.status)).toEqual(['overwritten', 'overwritten']);
    expect(await bySerial('KEEP0001')).toMatchObject({ description: 'second details' });
    expect(await bySerial('KEEP0002')).toMatchObject({ description: null });
  });

  it('accepts 5,000 rows and refuses 5,001 whole, importing nothing (check 46)', async () => {
    const count = async () => Number(await h.ok({ method: 'GET', url: devices('/$count') }));
    const before = await count();
    const tooMany = await h.csv(serialRows(5001, 'X'), `?profileId=${profileId}`);
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().error.message).toMatch(/more than 5,000 rows/);
    expect(await count()).toBe(before);
    const res = await h.csv(serialRows(5000, 'Y'), `?profileId=${profileId}`);
    expect(res.statusCode).toBe(200);
    expect((res.json().value as Json[]).every((r) => r.status === 'created')).toBe(true);
    expect(await count()).toBe(before + 5000);
  });

  it('refuses a header row, an empty file, a JSON body, an unknown profile and another tenant id', async () => {
    const header = await h.csv('Serial Number,Details\nABC123,x', `?profileId=${profileId}`);
    expect(header.statusCode).toBe(400);
    expect(header.json().error.message).toMatch(/looks like a header/);
    expect((await h.csv('\n\n', `?profileId=${profileId}`)).statusCode).toBe(400);
    expect((await h.csv('ABC123,x', '?profileId=nope')).json().error.target).toBe('profileId');
    const json = await h.request({ method: 'POST', url: devices('/importCsv'), payload: { a: 1 } });
    expect(json.statusCode).toBe(415);
    const other = await h.request({ method: 'POST', url: `${SETTINGS}/some-token/importedAppleDeviceIdentities/importCsv`, payload: 'ABC123,x', headers: { 'content-type': 'text/csv' } });
    expect(other.statusCode).toBe(404);
  });

  it('importAppleDeviceIdentityList, POST, PATCH, DELETE and updateDeviceProfileAssignment under the pseudo setting', async () => {
    const list = await h.ok({
      method: 'POST',
      url: devices('/importAppleDeviceIdentityList'),
      payload: {
        importedAppleDeviceIdentities: [
          { '@odata.type': DEVICE_TYPE, serialNumber: 'GRAPH001', description: 'via Graph', requestedEnrollmentProfileId: profileId, platform: 'ios' },
          { serialNumber: 'KEEP0001', description: 'not overwritten' },
          { serialNumber: 'bad.one' },
          { serialNumber: 'GRAPH002', requestedEnrollmentProfileId: 'unknown-profile' },
        ],
        overwriteImportedDeviceIdentities: false,
      },
    });
    expect(list.value.map((r: Json) => [r['@odata.type'], r.serialNumber, r.status])).toEqual([
      ['#microsoft.graph.importedAppleDeviceIdentityResult', 'GRAPH001', true],
      ['#microsoft.graph.importedAppleDeviceIdentityResult', 'KEEP0001', true],
      ['#microsoft.graph.importedAppleDeviceIdentityResult', 'bad.one', false],
      ['#microsoft.graph.importedAppleDeviceIdentityResult', 'GRAPH002', false],
    ]);
    expect(list.value[1]).toMatchObject({ description: 'second details', 'description@openEnroll.kept': expect.any(String) });
    expect(list.value[3]['status@openEnroll.message']).toMatch(/not an Apple Configurator profile/);

    const created = await h.ok({ method: 'POST', url: devices(), payload: { serialNumber: 'ONE0001', requestedEnrollmentProfileId: profileId } }, 201);
    expect(created).toMatchObject({ '@odata.type': DEVICE_TYPE, serialNumber: 'ONE0001' });
    expect((await h.request({ method: 'POST', url: devices(), payload: { serialNumber: 'one0001' } })).statusCode).toBe(409);
    const patched = await h.ok({ method: 'PATCH', url: devices(`/${created.id}`), payload: { description: 'renamed', requestedEnrollmentProfileId: otherProfileId } });
    expect(patched).toMatchObject({ description: 'renamed', requestedEnrollmentProfileId: otherProfileId });
    expect((await h.request({ method: 'PATCH', url: devices(`/${created.id}`), payload: { requestedEnrollmentProfileId: 'nope' } })).statusCode).toBe(400);

    await h.ok({ method: 'POST', url: `${h.setting()}/enrollmentProfiles/${profileId}/updateDeviceProfileAssignment`, payload: { deviceIds: ['one0001', 'GRAPH001'] } }, 204);
    expect((await h.ok({ method: 'GET', url: devices(`/${created.id}`) })).requestedEnrollmentProfileId).toBe(profileId);
    const unknown = await h.request({ method: 'POST', url: `${h.setting()}/enrollmentProfiles/${otherProfileId}/updateDeviceProfileAssignment`, payload: { deviceIds: ['ONE0001', 'NOPE999'] } });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.message).toMatch(/NOPE999 is not an Apple Configurator device.*Nothing was assigned/);
    expect((await h.ok({ method: 'GET', url: devices(`/${created.id}`) })).requestedEnrollmentProfileId).toBe(profileId);

    // A profile in use can't be deleted.
    const inUse = await h.request({ method: 'DELETE', url: `${h.setting()}/enrollmentProfiles/${profileId}` });
    expect(inUse.statusCode).toBe(409);
    await h.ok({ method: 'DELETE', url: devices(`/${created.id}`) }, 204);
    expect((await h.request({ method: 'GET', url: devices(`/${created.id}`) })).statusCode).toBe(404);
  });
});

describe('Apple Configurator admin access', () => {
  let h: ConfiguratorHarness;
  beforeAll(async () => {
    h = await configuratorHarness();
  });
  afterAll(() => h.close());

  it('reads need enrollment.read and writes enrollment.write', async () => {
    const reader = await h.t.createKey('readOnlyOperator');
    const p = await h.profile();
    expect((await h.request({ method: 'GET', url: `${h.setting()}/enrollmentProfiles/${p.id}`, key: reader })).statusCode).toBe(200);
    expect((await h.request({ method: 'GET', url: `${h.setting()}/importedAppleDeviceIdentities`, key: reader })).statusCode).toBe(200);
    for (const req of [
      { method: 'POST' as const, url: `${h.setting()}/enrollmentProfiles`, payload: { displayName: 'x' } },
      { method: 'PATCH' as const, url: `${h.setting()}/enrollmentProfiles/${p.id}`, payload: { displayName: 'x' } },
      { method: 'DELETE' as const, url: `${h.setting()}/enrollmentProfiles/${p.id}` },
      { method: 'GET' as const, url: `${h.setting()}/enrollmentProfiles/${p.id}/exportMobileConfig` },
    ]) {
      // Export is a GET in Graph, but it mints an enrollment credential: writers only.
      expect((await h.request({ ...req, key: reader })).statusCode, `${req.method} ${req.url}`).toBe(403);
    }
    const csv = await h.request({ method: 'POST', url: `${h.setting()}/importedAppleDeviceIdentities/importCsv`, payload: 'ABC1,x', headers: { 'content-type': 'text/csv' }, key: reader });
    expect(csv.statusCode).toBe(403);
    expect((await h.request({ method: 'GET', url: `${h.setting()}/enrollmentProfiles`, key: null })).statusCode).toBe(401);
  });

  it('scoped administrators see profiles in their scope and serials through them', async () => {
    const tag = await h.ok({ method: 'POST', url: '/beta/deviceManagement/roleScopeTags', payload: { displayName: 'Stores' } }, 201);
    const scoped = await h.t.createKey('scopedAdministrator', [tag.id]);
    const mine = await h.profile({ displayName: 'Store kiosks' }, scoped);
    expect(mine.roleScopeTagIds).toEqual([tag.id]);
    const theirs = await h.profile({ displayName: 'HQ' });
    await h.csv('SCOPE001,mine', `?profileId=${mine.id}`, scoped);
    await h.csv('SCOPE002,theirs', `?profileId=${theirs.id}`);
    await h.csv('SCOPE003,no profile');
    const ids = async (url: string) => ((await h.ok({ method: 'GET', url, key: scoped })).value as Json[]).map((x) => x.displayName ?? x.serialNumber);
    expect(await ids(`${h.setting()}/enrollmentProfiles`)).toEqual(['Store kiosks']);
    expect(await ids(`${h.setting()}/importedAppleDeviceIdentities`)).toEqual(['SCOPE001']);
    expect((await h.request({ method: 'GET', url: `${h.setting()}/enrollmentProfiles/${theirs.id}`, key: scoped })).statusCode).toBe(404);
    // Every serial a scoped administrator imports needs a profile it sees.
    expect((await h.csv('SCOPE004,x', '', scoped)).statusCode).toBe(400);
    expect((await h.csv('SCOPE004,x', `?profileId=${theirs.id}`, scoped)).statusCode).toBe(400);
    const taken = (await h.csv('SCOPE002,x', `?profileId=${mine.id}`, scoped)).json().value[0];
    expect(taken).toMatchObject({ status: 'failed', error: expect.stringMatching(/outside your scope/) });
  });

  it('keeps tenants apart, and the ADE routes still serve real tokens', async () => {
    const other = await h.t.createTenant('Fabrikam');
    const p = await h.profile({ displayName: 'Tenant A' });
    await h.csv('TENANTA1,x', `?profileId=${p.id}`);
    // Tenant A's pseudo setting is not a token of tenant B: the ADE routes answer (404).
    const cross = await h.request({ method: 'GET', url: `${h.setting()}/enrollmentProfiles`, key: other.adminKey });
    expect(cross.statusCode).toBe(404);
    expect((await h.request({ method: 'GET', url: `${h.setting()}/enrollmentProfiles/${p.id}`, key: other.adminKey })).statusCode).toBe(404);
    const own = await h.ok({ method: 'GET', url: `${h.setting(other.tenantId)}/importedAppleDeviceIdentities`, key: other.adminKey });
    expect(own.value).toEqual([]);
    await h.ok({ method: 'GET', url: `${h.setting(other.tenantId)}/enrollmentProfiles/${p.id}`, key: other.adminKey }, 404);
    // The profile URL is the tenant's: the other tenant's id in it is a 404.
    expect((await h.t.app.server.inject({ method: 'GET', url: `/enroll/apple/configurator/${other.tenantId}/${p.id}` })).statusCode).toBe(404);

    // A real enrollment program token still gets the ADE answers under the same URL patterns.
    const token = await h.ok({ method: 'POST', url: SETTINGS, payload: { dataSharingConsentGranted: true } }, 201);
    const ade = await h.ok({ method: 'POST', url: `${SETTINGS}/${token.id}/enrollmentProfiles`, payload: { '@odata.type': '#microsoft.graph.depIOSEnrollmentProfile', displayName: 'ADE phones' } }, 201);
    expect(ade['@odata.type']).toBe('#microsoft.graph.depIOSEnrollmentProfile');
    expect((await h.ok({ method: 'GET', url: `${SETTINGS}/${token.id}/enrollmentProfiles` })).value.map((x: Json) => x.displayName)).toEqual(['ADE phones']);
    const configuratorNames = (await h.ok({ method: 'GET', url: `${h.setting()}/enrollmentProfiles` })).value.map((x: Json) => x.displayName);
    expect(configuratorNames).toContain('Tenant A');
    expect(configuratorNames).not.toContain('ADE phones');
    const adeExport = await h.request({ method: 'GET', url: `${SETTINGS}/${token.id}/enrollmentProfiles/${ade.id}/exportMobileConfig` });
    expect(adeExport.statusCode).toBe(400);
    expect(adeExport.json().error.message).toMatch(/Automated Device Enrollment profile/);
  });
});
