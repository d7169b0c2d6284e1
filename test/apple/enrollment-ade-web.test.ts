import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { MINUTE } from '../../src/shared/time.js';
import { allUsersTarget } from '../enrollment-policy/terms-reports-fixtures.js';
import { startTestIdp, type TestIdp } from './enrollment-ade-idp.js';
import { adeEnrollHarness, adeUrl, expectEnrollmentProfile, PASSWORD, signedMachineInfo, testDevice, type AdeEnrollHarness, type TestDevice } from './enrollment-ade-support.js';

/**
 * ADE `configuration_web_url`: Setup Assistant's web view GETs it with the signed MachineInfo in
 * x-apple-aspen-deviceinfo; the user signs in (directory password or single sign-on), accepts the
 * terms the gate asks for, and gets the enrollment profile from the same host.
 */

let h: AdeEnrollHarness | undefined;
let idp: TestIdp | undefined;
afterEach(async () => {
  await h?.close();
  await idp?.close();
  h = undefined;
  idp = undefined;
});

const COOKIE = 'oe_ade_session';

function cookieFrom(res: LightMyRequestResponse): string {
  const raw = res.headers['set-cookie'];
  const all = Array.isArray(raw) ? raw : raw ? [raw] : [];
  const c = all.map(String).reverse().find((x) => x.startsWith(`${COOKIE}=`));
  if (!c) throw new Error(`no session cookie in ${JSON.stringify(raw)}`);
  return c.split(';')[0]!;
}

function hidden(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) out[m[1]!] = m[2]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"');
  return out;
}

interface Browser {
  cookie: string;
  page: LightMyRequestResponse;
}

async function open(e: AdeEnrollHarness, profileId: string, d: TestDevice, tenantId = e.t.tenantId): Promise<LightMyRequestResponse> {
  return e.t.app.server.inject({ method: 'GET', url: `${adeUrl(tenantId, profileId)}/web`, headers: { 'x-apple-aspen-deviceinfo': signedMachineInfo(d).toString('base64') } });
}

async function submit(e: AdeEnrollHarness, profileId: string, b: Browser, fields: Record<string, string>, opts: { remoteAddress?: string; tenantId?: string } = {}): Promise<LightMyRequestResponse> {
  const res = await e.t.app.server.inject({
    method: 'POST',
    url: `${adeUrl(opts.tenantId ?? e.t.tenantId, profileId)}/web`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: b.cookie },
    payload: new URLSearchParams({ ...hidden(b.page.body), ...fields }).toString(),
    ...(opts.remoteAddress ? { remoteAddress: opts.remoteAddress } : {}),
  });
  if (res.headers['set-cookie']) {
    try {
      b.cookie = cookieFrom(res);
    } catch {
      /* a cleared cookie */
    }
  }
  if (String(res.headers['content-type']).startsWith('text/html')) b.page = res;
  return res;
}

async function modernSetup(opts: { env?: Record<string, string>; profile?: Record<string, unknown> } = {}) {
  const e = await adeEnrollHarness(opts.env ? { env: opts.env } : {});
  const d = await testDevice();
  await e.addDevices([{ serial: d.serial }]);
  const profileId = await e.profile({ displayName: 'Staff iPhones', requiresUserAuthentication: true, configurationWebUrl: true, ...opts.profile }, { isDefault: true });
  const userId = await e.createUser('ada@contoso.test');
  return { e, d, profileId, userId };
}

describe('ADE configuration_web_url', () => {
  it('shows a sign-in page with a hashed, HttpOnly, Secure, SameSite=Lax session; the right password gets the profile', async () => {
    const s = await modernSetup();
    h = s.e;
    const page = await open(h, s.profileId, s.d);
    expect(page.statusCode, page.body).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.body).toContain('<form method="post"');
    expect(page.body).toContain('name="password"');
    expect(page.body).not.toMatch(/<script/i);
    const setCookie = String(page.headers['set-cookie']);
    expect(setCookie).toMatch(/^oe_ade_session=[A-Za-z0-9_-]{43}; Path=\/enroll\/apple\/ade\/; Max-Age=900; HttpOnly; Secure; SameSite=Lax$/);
    const token = cookieFrom(page).split('=')[1]!;
    const rows = await h.t.store.db.selectFrom('web_enrollment_sessions').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.id_hash).not.toContain(token);
    expect(rows[0]).toMatchObject({ purpose: 'adeWeb', user_id: null, tenant_id: h.t.tenantId });
    expect(Date.parse(rows[0]!.expires_at) - Date.parse(rows[0]!.created_at)).toBe(15 * MINUTE);
    expect(JSON.parse(rows[0]!.context)).toMatchObject({ urlProfileId: s.profileId, machine: { serialNumber: s.d.serial, udid: s.d.udid } });

    const b: Browser = { cookie: cookieFrom(page), page };
    const done = await submit(h, s.profileId, b, { username: 'ada@contoso.test', password: PASSWORD });
    expectEnrollmentProfile(done);
    expect(String(done.headers['set-cookie'])).toContain('Max-Age=0');
    expect((await h.intents())[0]).toMatchObject({ user_id: s.userId, user_affinity: 'user', authentication_method: 'setupAssistantModern', device_enrollment_type: 'appleBulkWithUser' });
    // The session is gone once the profile is served.
    expect(await h.t.store.db.selectFrom('web_enrollment_sessions').selectAll().execute()).toEqual([]);
  });

  it('says the same for a wrong password and an unknown user, and never echoes the password', async () => {
    const s = await modernSetup();
    h = s.e;
    const page = await open(h, s.profileId, s.d);
    const b: Browser = { cookie: cookieFrom(page), page };
    const wrong = await submit(h, s.profileId, b, { username: 'ada@contoso.test', password: 'Wr0ng-password!' });
    expect(wrong.statusCode).toBe(401);
    const unknown = await submit(h, s.profileId, b, { username: 'ghost@contoso.test', password: 'Wr0ng-password!' });
    expect(unknown.statusCode).toBe(401);
    const message = (r: LightMyRequestResponse) => /<p class="error" role="alert">([^<]*)<\/p>/.exec(r.body)?.[1];
    expect(message(wrong)).toBe('The account name or password is incorrect.');
    expect(message(unknown)).toBe(message(wrong));
    expect(wrong.body).not.toContain('Wr0ng-password!');
    expect(await h.intents()).toEqual([]);
    expectEnrollmentProfile(await submit(h, s.profileId, b, { username: 'ada@contoso.test', password: PASSWORD }));
  });

  it('refuses a missing or wrong CSRF token, an expired session and a session of another url', async () => {
    const s = await modernSetup();
    h = s.e;
    const page = await open(h, s.profileId, s.d);
    const b: Browser = { cookie: cookieFrom(page), page };
    const noCsrf = await submit(h, s.profileId, b, { csrf: '', username: 'ada@contoso.test', password: PASSWORD });
    expect(noCsrf.statusCode).toBe(400);
    b.page = page;
    const badCsrf = await submit(h, s.profileId, b, { csrf: 'x'.repeat(43), username: 'ada@contoso.test', password: PASSWORD });
    expect(badCsrf.statusCode).toBe(400);
    b.page = page;
    // No cookie at all.
    const noCookie = await submit(h, s.profileId, { cookie: '', page }, { username: 'ada@contoso.test', password: PASSWORD });
    expect(noCookie.statusCode).toBe(400);
    // Another profile's url (and another tenant's) with this session.
    const other = await h.profile({ displayName: 'Other' });
    expect((await submit(h, other, { cookie: b.cookie, page }, { username: 'ada@contoso.test', password: PASSWORD })).statusCode).toBe(400);
    const tenantB = await h.t.createTenant('Fabrikam');
    expect((await submit(h, s.profileId, { cookie: b.cookie, page }, { username: 'ada@contoso.test', password: PASSWORD }, { tenantId: tenantB.tenantId })).statusCode).toBe(400);
    expect(await h.intents()).toEqual([]);
    // 15 minutes later the session is over.
    h.clock.advance(15 * MINUTE);
    const late = await submit(h, s.profileId, { cookie: b.cookie, page }, { username: 'ada@contoso.test', password: PASSWORD });
    expect(late.statusCode).toBe(400);
    expect(late.body).toContain('expired');
    expect(await h.intents()).toEqual([]);
  });

  it('refuses a page request without (or with a forged) x-apple-aspen-deviceinfo header, creating no session', async () => {
    const s = await modernSetup();
    h = s.e;
    const none = await h.t.app.server.inject({ method: 'GET', url: `${adeUrl(h.t.tenantId, s.profileId)}/web` });
    expect(none.statusCode).toBe(400);
    expect(none.body).toContain('Setup Assistant');
    const garbage = await h.t.app.server.inject({ method: 'GET', url: `${adeUrl(h.t.tenantId, s.profileId)}/web`, headers: { 'x-apple-aspen-deviceinfo': 'bm90IGNtcw==' } });
    expect(garbage.statusCode).toBe(400);
    const forged = Buffer.from(signedMachineInfo(s.d));
    const at = forged.indexOf(Buffer.from(s.d.serial));
    forged[at] = forged[at]! ^ 1;
    const tampered = await h.t.app.server.inject({ method: 'GET', url: `${adeUrl(h.t.tenantId, s.profileId)}/web`, headers: { 'x-apple-aspen-deviceinfo': forged.toString('base64') } });
    expect(tampered.statusCode).toBe(403);
    expect(await h.t.store.db.selectFrom('web_enrollment_sessions').selectAll().execute()).toEqual([]);
    expect(await h.attempts()).toEqual([]);
  });

  it('serves a profile without user affinity at once, and a Company Portal profile userless', async () => {
    h = await adeEnrollHarness();
    const a = await testDevice();
    const b = await testDevice();
    await h.addDevices([{ serial: a.serial }, { serial: b.serial }]);
    const userless = await h.profile({ displayName: 'Kiosk' }, { isDefault: true });
    const portal = await h.profile({ displayName: 'Portal', requiresUserAuthentication: true, enableAuthenticationViaCompanyPortal: true });
    await h.t.store.db.updateTable('dep_devices').set({ requested_profile_id: portal }).where('serial_number', '=', b.serial).execute();
    expectEnrollmentProfile(await open(h, userless, a));
    expectEnrollmentProfile(await open(h, portal, b));
    expect((await h.intents()).map((i) => [i.serial_number, i.user_id, i.user_affinity])).toEqual([
      [a.serial, null, 'userless'],
      [b.serial, null, 'pendingCompanyPortal'],
    ]);
  });

  it('signs in an iOS 12.4 device too: modern authentication falls back to legacy, and the page still authenticates the user', async () => {
    h = await adeEnrollHarness();
    const d = await testDevice({ osVersion: '12.4', version: '16G77' });
    await h.addDevices([{ serial: d.serial }]);
    const profileId = await h.profile({ requiresUserAuthentication: true, configurationWebUrl: true }, { isDefault: true });
    await h.createUser('ada@contoso.test');
    const page = await open(h, profileId, d);
    expect(page.body).toContain('name="password"');
    expectEnrollmentProfile(await submit(h, profileId, { cookie: cookieFrom(page), page }, { username: 'ada@contoso.test', password: PASSWORD }));
    expect((await h.intents())[0]).toMatchObject({ authentication_method: 'setupAssistantLegacy', os_version: '12.4' });
  });

  it('shows the terms the gate asks for after sign-in; accepting them records the acceptance and serves the profile', async () => {
    const s = await modernSetup();
    h = s.e;
    const terms = await h.ok({ method: 'POST', url: '/beta/deviceManagement/termsAndConditions', payload: { displayName: 'Acceptable use', title: 'Contoso acceptable use', bodyText: 'Be <nice> & careful.', acceptanceStatement: 'I will be nice.' } }, 201);
    await h.ok({ method: 'POST', url: `/beta/deviceManagement/termsAndConditions/${terms.id}/assignments`, payload: { target: allUsersTarget } }, 201);

    const page = await open(h, s.profileId, s.d);
    const b: Browser = { cookie: cookieFrom(page), page };
    const shown = await submit(h, s.profileId, b, { username: 'ada@contoso.test', password: PASSWORD });
    expect(shown.statusCode).toBe(200);
    expect(shown.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(shown.body).toContain('Contoso acceptable use');
    expect(shown.body).toContain('Be &lt;nice&gt; &amp; careful.');
    expect(shown.body).toContain('I will be nice.');
    expect(hidden(shown.body)).toMatchObject({ step: 'acceptTerms', terms: `${terms.id}:1` });
    // The gate's refusal is in the failures report.
    expect((await h.attempts()).map((a) => a.reason)).toEqual(['termsNotAccepted']);

    // Not ticking the box shows them again.
    const unticked = await submit(h, s.profileId, b, { accept: '' });
    expect(unticked.body).toContain('Contoso acceptable use');
    const done = await submit(h, s.profileId, b, { accept: 'yes' });
    expectEnrollmentProfile(done);
    const acceptances = await h.t.store.db.selectFrom('terms_acceptances').selectAll().execute();
    expect(acceptances).toMatchObject([{ terms_id: terms.id, user_id: s.userId, accepted_version: 1 }]);
    expect((await h.intents())[0]).toMatchObject({ user_id: s.userId });
  });

  it('shows changed terms again instead of accepting a version the user never read', async () => {
    const s = await modernSetup();
    h = s.e;
    const terms = await h.ok({ method: 'POST', url: '/beta/deviceManagement/termsAndConditions', payload: { displayName: 'Use', title: 'Use v1', bodyText: 'One' } }, 201);
    await h.ok({ method: 'POST', url: `/beta/deviceManagement/termsAndConditions/${terms.id}/assignments`, payload: { target: allUsersTarget } }, 201);
    const page = await open(h, s.profileId, s.d);
    const b: Browser = { cookie: cookieFrom(page), page };
    await submit(h, s.profileId, b, { username: 'ada@contoso.test', password: PASSWORD });
    await h.ok({ method: 'PATCH', url: `/beta/deviceManagement/termsAndConditions/${terms.id}`, payload: { version: 2, bodyText: 'Two' } });
    const again = await submit(h, s.profileId, b, { accept: 'yes' });
    expect(again.statusCode).toBe(200);
    expect(again.body).toContain('The terms and conditions changed');
    expect(hidden(again.body).terms).toBe(`${terms.id}:2`);
    expect(await h.t.store.db.selectFrom('terms_acceptances').selectAll().execute()).toEqual([]);
    expectEnrollmentProfile(await submit(h, s.profileId, b, { accept: 'yes' }));
    expect(await h.t.store.db.selectFrom('terms_acceptances').select('accepted_version').execute()).toEqual([{ accepted_version: 2 }]);
  });

  it('locks a user name out after 10 failures (across addresses) for 15 minutes, even for the right password', async () => {
    const s = await modernSetup();
    h = s.e;
    const other = await testDevice();
    await h.addDevices([{ serial: other.serial }]);
    const page = await open(h, s.profileId, s.d);
    const b: Browser = { cookie: cookieFrom(page), page };
    for (let i = 0; i < 10; i++) {
      // A different address each time: the count follows the user name.
      const r = await submit(h, s.profileId, b, { username: 'ada@contoso.test', password: `Wrong-${i}!` }, { remoteAddress: `10.0.0.${i + 1}` });
      expect(r.statusCode, r.body).toBe(401);
      if (i === 4) {
        // A new session (the web view reloads) doesn't reset anything.
        const fresh = await open(h, s.profileId, s.d);
        b.cookie = cookieFrom(fresh);
        b.page = fresh;
      }
    }
    // Another device, another address, the right password: the user name is locked.
    const otherPage = await open(h, s.profileId, other);
    const locked = await submit(h, s.profileId, { cookie: cookieFrom(otherPage), page: otherPage }, { username: 'ada@contoso.test', password: PASSWORD }, { remoteAddress: '10.0.1.1' });
    expect(locked.statusCode).toBe(429);
    expect(locked.headers['retry-after']).toBeDefined();
    expect(locked.body).toContain('Too many failed sign-in attempts');
    expect(await h.intents()).toEqual([]);
    h.clock.advance(15 * MINUTE);
    const fresh = await open(h, s.profileId, other);
    expectEnrollmentProfile(await submit(h, s.profileId, { cookie: cookieFrom(fresh), page: fresh }, { username: 'ada@contoso.test', password: PASSWORD }, { remoteAddress: '10.0.1.1' }));
  });

  describe('single sign-on (OIDC authorization code + PKCE)', () => {
    async function ssoSetup() {
      idp = await startTestIdp();
      const s = await modernSetup({ env: { OPENENROLL_OIDC_ISSUER: idp.issuer, OPENENROLL_OIDC_AUDIENCE: 'api://openenroll', OPENENROLL_ENROLLMENT_OIDC_CLIENT_ID: idp.clientId } });
      h = s.e;
      const page = await open(h, s.profileId, s.d);
      const b: Browser = { cookie: cookieFrom(page), page };
      expect(page.body).toContain(`href="${adeUrl(h.t.tenantId, s.profileId)}/web/oidc"`);
      const start = await h.t.app.server.inject({ method: 'GET', url: `${adeUrl(h.t.tenantId, s.profileId)}/web/oidc`, headers: { cookie: b.cookie } });
      expect(start.statusCode, start.body).toBe(302);
      const location = String(start.headers.location);
      expect(location.startsWith(`${idp.issuer}/authorize?`)).toBe(true);
      const q = new URL(location).searchParams;
      expect(q.get('redirect_uri')).toBe('https://openenroll.test/enroll/apple/ade/oidc/callback');
      expect(q.get('code_challenge_method')).toBe('S256');
      expect(q.get('client_id')).toBe(idp.clientId);
      return { ...s, b, location };
    }
    const callback = (e: AdeEnrollHarness, url: string, cookie: string) => e.t.app.server.inject({ method: 'GET', url: new URL(url).pathname + new URL(url).search, headers: { cookie } });

    it('signs the user in at the identity provider and serves the profile', async () => {
      const s = await ssoSetup();
      const back = idp!.authorize(s.location, { upn: 'Ada@contoso.test', tid: h!.t.tenantId, sub: 'ada' });
      const done = await callback(h!, back, s.b.cookie);
      expectEnrollmentProfile(done);
      expect((await h!.intents())[0]).toMatchObject({ user_id: s.userId, user_affinity: 'user' });
      // The code is single-use, and so is the session.
      const replay = await callback(h!, back, s.b.cookie);
      expect(replay.statusCode).toBe(400);
    });

    it("refuses a forged state, another nonce, another tenant's token and an unknown user", async () => {
      const s = await ssoSetup();
      const forged = new URL(idp!.authorize(s.location, { upn: 'ada@contoso.test', tid: h!.t.tenantId }));
      forged.searchParams.set('state', 'forged');
      expect((await callback(h!, forged.href, s.b.cookie)).statusCode).toBe(403);
      expect(idp!.tokenRequests).toBe(0);

      const restart = async () => {
        const start = await h!.t.app.server.inject({ method: 'GET', url: `${adeUrl(h!.t.tenantId, s.profileId)}/web/oidc`, headers: { cookie: s.b.cookie } });
        return String(start.headers.location);
      };
      expect((await callback(h!, idp!.authorize(await restart(), { upn: 'ada@contoso.test', tid: h!.t.tenantId }, { nonce: 'other' }), s.b.cookie)).statusCode).toBe(403);
      expect((await callback(h!, idp!.authorize(await restart(), { upn: 'ada@contoso.test', tid: h!.t.tenantId }, { audience: 'someone-else' }), s.b.cookie)).statusCode).toBe(403);
      expect((await callback(h!, idp!.authorize(await restart(), { upn: 'ada@contoso.test', tid: 'another-tenant' }), s.b.cookie)).statusCode).toBe(403);
      expect((await callback(h!, idp!.authorize(await restart(), { upn: 'ghost@contoso.test', tid: h!.t.tenantId }), s.b.cookie)).statusCode).toBe(403);
      expect(await h!.intents()).toEqual([]);
      // Without the browser's session cookie the answer is useless.
      expect((await callback(h!, idp!.authorize(await restart(), { upn: 'ada@contoso.test', tid: h!.t.tenantId }), '')).statusCode).toBe(400);
      expect(await h!.intents()).toEqual([]);
    });
  });
});
