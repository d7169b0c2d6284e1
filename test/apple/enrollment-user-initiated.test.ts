import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAppleDevice, deviceOptionsFor, type EnrollmentResult } from '../../sim/apple-device/index.js';
import { adeWorld, deviceCa, MANAGED_DEVICES, USER_PASSWORD, type AdeWorld } from '../helpers/apple-device.js';
import { addMember, allUsersTarget, createGroup, groupTarget } from '../enrollment-policy/terms-reports-fixtures.js';
import { PASSWORD } from './enrollment-ade-support.js';
import { configuratorHarness, profilePlist, type ConfiguratorHarness, type Json } from './enrollment-configurator-support.js';

/** The user-initiated enrollment page (-D §1.2, §6, §7; checks 39–41, 44): sign-in, enrollment type, terms, gate, profile. */

const IPHONE_UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';
const MAC_UA = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15';
const TYPES = '/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles';

/** A browser on the page: keeps the session cookie, reads the CSRF token, submits forms. */
class Browser {
  cookie: string | undefined;
  csrf: string | undefined;
  last!: LightMyRequestResponse;
  constructor(
    private readonly h: ConfiguratorHarness,
    private readonly ua = IPHONE_UA,
    readonly path = `/enroll/apple/${h.tenantId}`,
  ) {}

  private remember(res: LightMyRequestResponse): LightMyRequestResponse {
    const set = res.headers['set-cookie'];
    for (const c of Array.isArray(set) ? set : set ? [set] : []) {
      const [pair] = c.split(';');
      const [name, value] = [pair!.slice(0, pair!.indexOf('=')), pair!.slice(pair!.indexOf('=') + 1)];
      if (name === 'oe_enroll_session') this.cookie = value || undefined;
    }
    const csrf = /name="csrf" value="([^"]+)"/.exec(res.body)?.[1];
    if (csrf) this.csrf = csrf;
    this.last = res;
    return res;
  }

  async open(query = ''): Promise<LightMyRequestResponse> {
    return this.remember(await this.h.t.app.server.inject({ method: 'GET', url: `${this.path}${query}`, headers: { 'user-agent': this.ua } }));
  }

  async submit(fields: Record<string, string>): Promise<LightMyRequestResponse> {
    const body = new URLSearchParams({ csrf: this.csrf ?? '', ...fields }).toString();
    return this.remember(
      await this.h.t.app.server.inject({
        method: 'POST',
        url: this.path,
        payload: body,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': this.ua, ...(this.cookie ? { cookie: `oe_enroll_session=${this.cookie}` } : {}) },
      }),
    );
  }

  signIn(upn: string, password = PASSWORD) {
    return this.submit({ step: 'signIn', username: upn, password });
  }
}

const isProfile = (res: LightMyRequestResponse) => res.statusCode === 200 && res.headers['content-type'] === 'application/x-apple-aspen-config';

describe('user-initiated enrollment page', () => {
  let h: ConfiguratorHarness;
  const intentsOf = (userId: string) => h.t.store.db.selectFrom('enrollment_intents').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
  async function user(upn: string): Promise<string> {
    return h.createUser(upn);
  }
  async function typeProfile(body: Record<string, unknown>, target: Record<string, unknown>): Promise<string> {
    const p = await h.ok({ method: 'POST', url: TYPES, payload: { displayName: 'Type', platform: 'iOS', ...body } }, 201);
    await h.ok({ method: 'POST', url: `${TYPES}/${p.id}/assignments`, payload: { target } }, 201);
    return p.id as string;
  }

  beforeAll(async () => {
    h = await configuratorHarness();
  });
  afterAll(() => h.close());

  it('signs the user in and serves a device enrollment profile when no enrollment-type profile applies', async () => {
    const id = await user('pradeep@contoso.com');
    const b = new Browser(h);
    const page = await b.open();
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.body).toContain('Enroll your device');
    expect(page.headers['set-cookie']).toMatch(new RegExp(`^oe_enroll_session=[A-Za-z0-9_-]{43}; Path=/enroll/apple/${h.tenantId}; .*HttpOnly; Secure; SameSite=Lax`));
    const wrong = await b.signIn('pradeep@contoso.com', 'nope');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('The account name or password is incorrect.');
    const res = await b.signIn('pradeep@contoso.com');
    expect(isProfile(res), res.body).toBe(true);
    expect(res.headers['content-disposition']).toBe('attachment; filename="enroll.mobileconfig"');
    const plist = profilePlist(res.rawPayload);
    const mdm = (plist.PayloadContent as Json[]).find((p) => p.PayloadType === 'com.apple.mdm');
    expect(mdm.EnrollmentMode).toBeUndefined();
    expect(mdm.AccessRights).toBe(8191);
    const [intent] = await intentsOf(id);
    expect(intent).toMatchObject({
      source: 'userInitiated',
      enrollment_type: 'device',
      platform: 'iOS',
      os_version: '17.4.1',
      ownership: 'personal',
      device_enrollment_type: 'userEnrollment',
      serial_number: null,
      udid: null,
      imei: null,
      profile_id: null,
      reusable: 0,
      user_affinity: 'user',
    });
    expect(JSON.parse(intent!.gate_request!)).toMatchObject({ method: 'appleCompanyPortal', userDriven: true, userId: id, platform: 'ios', device: { osVersion: '17.4.1' } });
    // The session ends with the download: the page can't be replayed for a second profile.
    expect((await b.submit({ step: 'signIn', username: 'pradeep@contoso.com', password: PASSWORD })).statusCode).toBe(400);
  });

  it('a "User enrollment" profile gives an Apple User Enrollment: BYOD, the managed Apple ID, no device identifiers (check 44)', async () => {
    const id = await user('megan@contoso.com');
    const group = await createGroup(h.t, 'BYOD');
    await addMember(h.t, group, id);
    const typeId = await typeProfile({ displayName: 'BYOD', defaultEnrollmentType: 'user' }, groupTarget(group));
    const b = new Browser(h);
    await b.open();
    const res = await b.signIn('megan@contoso.com');
    expect(isProfile(res), res.body).toBe(true);
    const mdm = (profilePlist(res.rawPayload).PayloadContent as Json[]).find((p) => p.PayloadType === 'com.apple.mdm');
    expect(mdm).toMatchObject({ EnrollmentMode: 'BYOD', ManagedAppleID: 'megan@contoso.com' });
    expect(mdm.AccessRights).toBeUndefined();
    const [intent] = await intentsOf(id);
    expect(intent).toMatchObject({
      source: 'userEnrollment',
      enrollment_type: 'user',
      device_enrollment_type: 'appleUserEnrollment',
      ownership: 'personal',
      serial_number: null,
      udid: null,
      imei: null,
      dep_device_id: null,
      profile_id: typeId,
    });
    const request = JSON.parse(intent!.gate_request!);
    expect(request).toMatchObject({ method: 'appleUserEnrollment', userEnrollmentProfileApplies: true });
    expect(request.device.serialNumber ?? null).toBeNull();
    expect(request.device.imei ?? null).toBeNull();
  });

  it('the higher-priority profile wins for a user in two groups (check 40)', async () => {
    const id = await user('nestor@contoso.com');
    const a = await createGroup(h.t, 'Sales');
    const b = await createGroup(h.t, 'Sales phones');
    await addMember(h.t, a, id);
    await addMember(h.t, b, id);
    const device = await typeProfile({ displayName: 'Sales devices', defaultEnrollmentType: 'device' }, groupTarget(a));
    const userType = await typeProfile({ displayName: 'Sales BYOD', defaultEnrollmentType: 'user' }, groupTarget(b));
    await h.ok({ method: 'POST', url: `${TYPES}/${userType}/setPriority`, payload: { priority: 0 } }, 204);
    const br = new Browser(h);
    await br.open();
    expect(isProfile(await br.signIn('nestor@contoso.com'))).toBe(true);
    expect((await intentsOf(id))[0]).toMatchObject({ enrollment_type: 'user', profile_id: userType });
    await h.ok({ method: 'POST', url: `${TYPES}/${device}/setPriority`, payload: { priority: 0 } }, 204);
    const again = new Browser(h);
    await again.open();
    expect(isProfile(await again.signIn('nestor@contoso.com'))).toBe(true);
    expect((await intentsOf(id))[1]).toMatchObject({ enrollment_type: 'device', profile_id: device });
  });

  it('"Determine based on user choice": company → device enrollment, corporate; personal + work only → User Enrollment, personal (check 41)', async () => {
    const id = await user('isaiah@contoso.com');
    const group = await createGroup(h.t, 'Choosers');
    await addMember(h.t, group, id);
    await typeProfile(
      {
        displayName: 'Choice',
        defaultEnrollmentType: 'device',
        availableEnrollmentTypeOptions: [
          { ownerType: 'company', enrollmentType: 'device' },
          { ownerType: 'personal', enrollmentType: 'device' },
          { ownerType: 'personal', enrollmentType: 'user' },
        ],
      },
      groupTarget(group),
    );
    const company = new Browser(h);
    await company.open();
    const ask = await company.signIn('isaiah@contoso.com');
    expect(ask.statusCode).toBe(200);
    expect(ask.body).toContain('Contoso owns this device'.replace('Contoso', (await h.t.store.db.selectFrom('tenants').select('display_name').where('id', '=', h.tenantId).executeTakeFirstOrThrow()).display_name));
    expect(ask.body).toContain('I own this device');
    expect(isProfile(await company.submit({ step: 'chooseOwner', owner: 'company' }))).toBe(true);
    expect((await intentsOf(id))[0]).toMatchObject({ enrollment_type: 'device', ownership: 'company', device_enrollment_type: 'userEnrollment' });

    const personal = new Browser(h);
    await personal.open();
    await personal.signIn('isaiah@contoso.com');
    const scope = await personal.submit({ step: 'chooseOwner', owner: 'personal' });
    expect(scope.body).toContain('Secure only work-related apps and data');
    expect(scope.body).toContain('Secure my entire device');
    expect(isProfile(await personal.submit({ step: 'chooseScope', scope: 'workOnly' }))).toBe(true);
    expect((await intentsOf(id))[1]).toMatchObject({ enrollment_type: 'user', ownership: 'personal', device_enrollment_type: 'appleUserEnrollment', serial_number: null });

    const whole = new Browser(h);
    await whole.open();
    await whole.signIn('isaiah@contoso.com');
    await whole.submit({ step: 'chooseOwner', owner: 'personal' });
    expect(isProfile(await whole.submit({ step: 'chooseScope', scope: 'entireDevice' }))).toBe(true);
    expect((await intentsOf(id))[2]).toMatchObject({ enrollment_type: 'device', ownership: 'personal' });
    // Answers the page didn't offer are refused, not guessed.
    const odd = new Browser(h);
    await odd.open();
    await odd.signIn('isaiah@contoso.com');
    expect((await odd.submit({ step: 'chooseOwner', owner: 'someone' })).statusCode).toBe(400);
  });

  it('shows the terms when the gate asks for them, accepts exactly the versions shown, then serves the profile', async () => {
    const id = await user('lidia@contoso.com');
    const group = await createGroup(h.t, 'Terms readers');
    await addMember(h.t, group, id);
    const terms = await h.ok({ method: 'POST', url: '/beta/deviceManagement/termsAndConditions', payload: { displayName: 'Acceptable use', title: 'Acceptable use', bodyText: 'Be nice.', acceptanceStatement: 'I agree.' } }, 201);
    await h.ok({ method: 'POST', url: `/beta/deviceManagement/termsAndConditions/${terms.id}/assignments`, payload: { target: groupTarget(group) } }, 201);
    const b = new Browser(h);
    await b.open();
    const page = await b.signIn('lidia@contoso.com');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Be nice.');
    expect(page.body).toContain(`name="terms" value="${terms.id}:1"`);
    // Not ticked: still the terms, no profile.
    expect((await b.submit({ step: 'acceptTerms', terms: `${terms.id}:1` })).body).toContain('Be nice.');
    // A new version arrived meanwhile: shown again.
    await h.ok({ method: 'PATCH', url: `/beta/deviceManagement/termsAndConditions/${terms.id}`, payload: { version: 2 } });
    const changed = await b.submit({ step: 'acceptTerms', terms: `${terms.id}:1`, accept: 'yes' });
    expect(changed.body).toContain('The terms and conditions changed');
    const res = await b.submit({ step: 'acceptTerms', terms: `${terms.id}:2`, accept: 'yes' });
    expect(isProfile(res), res.body).toBe(true);
    const acceptance = await h.t.store.db.selectFrom('terms_acceptances').selectAll().where('user_id', '=', id).executeTakeFirstOrThrow();
    expect(acceptance.accepted_version).toBe(2);
  });

  it('refuses what the gate refuses, with the reason and the activity ID', async () => {
    const id = await user('grady@contoso.com');
    // Personal iOS devices blocked by the default platform restriction.
    const list = await h.ok({ method: 'GET', url: "/beta/deviceManagement/deviceEnrollmentConfigurations?$filter=id eq '" + `${h.tenantId}_DefaultPlatformRestrictions'` });
    const def = list.value[0];
    await h.ok({
      method: 'PATCH',
      url: `/beta/deviceManagement/deviceEnrollmentConfigurations/${def.id}`,
      payload: { '@odata.type': '#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration', iosRestriction: { platformBlocked: false, personalDeviceEnrollmentBlocked: true } },
    });
    try {
      const b = new Browser(h);
      await b.open();
      const res = await b.signIn('grady@contoso.com');
      expect(res.statusCode).toBe(403);
      expect(res.body).toContain('Personally owned');
      const attempt = await h.t.store.db.selectFrom('enrollment_attempts').selectAll().where('user_id', '=', id).executeTakeFirstOrThrow();
      expect(attempt).toMatchObject({ outcome: 'failed', reason: 'personalDeviceBlocked', method: 'appleCompanyPortal' });
      expect(res.body).toContain(`Activity ID: ${attempt.activity_id}`);
      expect(await intentsOf(id)).toEqual([]);
    } finally {
      await h.ok({
        method: 'PATCH',
        url: `/beta/deviceManagement/deviceEnrollmentConfigurations/${def.id}`,
        payload: { '@odata.type': '#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration', iosRestriction: { platformBlocked: false, personalDeviceEnrollmentBlocked: false } },
      });
    }
  });

  it('asks a Mac-like browser which device it is, and decides with the macOS profiles for a Mac', async () => {
    const id = await user('diego@contoso.com');
    await typeProfile({ displayName: 'Mac BYOD', platform: 'macOS', defaultEnrollmentType: 'user' }, allUsersTarget);
    const b = new Browser(h, MAC_UA);
    const which = await b.open();
    expect(which.body).toContain('Which device are you enrolling?');
    expect(which.headers['set-cookie']).toBeUndefined();
    await b.open('?platform=macOS');
    const res = await b.signIn('diego@contoso.com');
    expect(isProfile(res), res.body).toBe(true);
    expect(profilePlist(res.rawPayload).TargetDeviceType).toBe(5);
    expect((await intentsOf(id))[0]).toMatchObject({ platform: 'macOS', enrollment_type: 'user', os_version: null });
  });

  it('refuses forged or expired posts, unknown tenants, and says when Apple enrollment is not set up', async () => {
    const b = new Browser(h);
    await b.open();
    const forged = await h.t.app.server.inject({
      method: 'POST',
      url: b.path,
      payload: 'csrf=wrong&step=signIn&username=x&password=y',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `oe_enroll_session=${b.cookie}` },
    });
    expect(forged.statusCode).toBe(400);
    expect((await h.t.app.server.inject({ method: 'POST', url: b.path, payload: `csrf=${b.csrf}&step=signIn` , headers: { 'content-type': 'application/x-www-form-urlencoded' } })).statusCode).toBe(400);
    h.clock.advance(16 * 60_000);
    expect((await b.signIn('pradeep@contoso.com')).statusCode).toBe(400);
    expect((await h.t.app.server.inject({ method: 'GET', url: '/enroll/apple/no-such-tenant' })).statusCode).toBe(404);
    const other = await h.t.createTenant('No push certificate');
    const res = await h.t.app.server.inject({ method: 'GET', url: `/enroll/apple/${other.tenantId}`, headers: { 'user-agent': IPHONE_UA } });
    expect(res.statusCode).toBe(409);
    expect(res.body).toContain('Devices can&#39;t be enrolled right now');
    expect(res.body).toContain('Contact your IT administrator.');
  });
});

describe('user-initiated journeys (simulators only)', () => {
  let w: AdeWorld | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it('a personal iPhone does Apple User Enrollment from the page: an EnrollmentID record without serial, UDID or IMEI (check 44)', async () => {
    w = await adeWorld();
    const world = w;
    const upn = 'joni@contoso.com';
    const userId = await world.createUser(upn);
    const p = await world.ok({ method: 'POST', url: TYPES, payload: { displayName: 'BYOD', platform: 'iOS', defaultEnrollmentType: 'user' } }, 201);
    await world.ok({ method: 'POST', url: `${TYPES}/${p.id}/assignments`, payload: { target: allUsersTarget } }, 201);
    const phone = createAppleDevice(deviceOptionsFor({ serial_number: 'F17ZK0N8Q1GD', model: 'iPhone 15' }, { deviceCa: await deviceCa(), trustAnchors: [world.tlsCertPem] }));
    try {
      const bytes = await phone.downloadProfile(`${world.publicUrl}/enroll/apple/${world.t.tenantId}`, { credentials: { username: upn, password: USER_PASSWORD } });
      const enrolled = (await phone.installProfile(bytes)) as EnrollmentResult;
      expect(enrolled.mdm.enrollmentMode).toBe('BYOD');
      expect(enrolled.enrollmentId).not.toBe(phone.udid);
      const devices = (await world.ok({ method: 'GET', url: `${MANAGED_DEVICES}?$filter=userId eq '${userId}'` })).value as Json[];
      expect(devices).toHaveLength(1);
      const md = devices[0];
      expect(md).toMatchObject({ deviceEnrollmentType: 'appleUserEnrollment', managedDeviceOwnerType: 'personal', userPrincipalName: upn });
      for (const k of ['serialNumber', 'udid', 'imei']) expect(md[k] ?? '', k).toBe('');
      const rows = await world.t.store.db.selectFrom('managed_devices').selectAll().where('id', '=', md.id).execute();
      expect(JSON.stringify(rows)).not.toContain('F17ZK0N8Q1GD');
      expect(JSON.stringify(rows)).not.toContain(phone.udid);
    } finally {
      phone.close();
    }
  });
});
