import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, MINUTE, SECOND } from '../../src/shared/time.js';
import { hmacSha1Signature, oauth1AuthorizationHeader, signatureBaseString } from '../../sim/apple-dep/oauth1.js';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { connectServer, credentialsFromP7m, Dep, http, JSON_TYPE, tokenRecipient, UA } from './abm-helpers.js';

describe('OAuth 1.0a signing', () => {
  it('matches the RFC 5849 §1.2 example signature', () => {
    const url = new URL('http://photos.example.net/photos?file=vacation.jpg&size=original');
    const params = {
      oauth_consumer_key: 'dpf43f3p2l4k3l03',
      oauth_token: 'nnch734d00sl2jdk',
      oauth_signature_method: 'HMAC-SHA1',
      oauth_timestamp: '137131202',
      oauth_nonce: 'chapoH',
    };
    const sig = hmacSha1Signature(signatureBaseString('GET', url, params), 'kd94hf93k423kf44', 'pfkkdhi9sl3r4s00');
    expect(sig).toBe('MdpQcU8iPSUjWoN/UDMsK2sui9I=');
  });
});

describe('ABM simulator: /session and sessions', () => {
  let clock: ManualClock;
  let sim: AbmSimulator;
  let dep: Dep;
  let serverUuid: string;

  beforeEach(async () => {
    clock = new ManualClock('2026-03-01T10:00:00Z');
    sim = await startAbmSimulator({ clock, sessionTtlMs: 30 * MINUTE });
    const s = connectServer(sim, 'OpenEnroll');
    serverUuid = s.serverUuid;
    dep = new Dep(sim, s.creds, { now: () => clock.now() });
  });
  afterEach(() => sim.close());

  it('accepts a good signature and answers with a session token that works on /account', async () => {
    const r = await dep.signedSession();
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Object.keys(r.json)).toEqual(['auth_session_token']);
    dep.session = r.json.auth_session_token;
    const acct = await dep.call('GET', '/account');
    expect(acct.status).toBe(200);
    expect(acct.json.server_uuid).toBe(serverUuid);
    expect(acct.json.server_name).toBe('OpenEnroll');
  });

  it('accepts the header without realm and without oauth_version', async () => {
    const url = `${sim.url}/session`;
    const header = oauth1AuthorizationHeader('GET', url, dep.creds, { timestamp: clock.now(), realm: null, version: null });
    const r = await http(url, { headers: { 'User-Agent': UA, 'Content-Type': JSON_TYPE, Authorization: header } });
    expect(r.status).toBe(200);
  });

  it('rejects a bad signature, a reused nonce and a stale or future timestamp with 401', async () => {
    const wrongSecret = await dep.signedSession({ creds: { ...dep.creds, consumerSecret: 'CS_nope' } });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.text).toBe('oauth_problem=signature_invalid');

    // Signed for another URL than the one called.
    const header = oauth1AuthorizationHeader('GET', `${sim.url}/session?x=1`, dep.creds, { timestamp: clock.now() });
    const otherUrl = await http(`${sim.url}/session`, { headers: { 'User-Agent': UA, 'Content-Type': JSON_TYPE, Authorization: header } });
    expect(otherUrl.text).toBe('oauth_problem=signature_invalid');

    expect((await dep.signedSession({ nonce: 'n-1' })).status).toBe(200);
    const replay = await dep.signedSession({ nonce: 'n-1' });
    expect(replay.status).toBe(401);
    expect(replay.text).toBe('oauth_problem=nonce_used');

    const stale = await dep.signedSession({ timestamp: new Date(clock.now().getTime() - 5 * MINUTE - SECOND) });
    expect([stale.status, stale.text]).toEqual([401, 'oauth_problem=timestamp_refused']);
    const future = await dep.signedSession({ timestamp: new Date(clock.now().getTime() + 5 * MINUTE + SECOND) });
    expect([future.status, future.text]).toEqual([401, 'oauth_problem=timestamp_refused']);
    // The edges of the window are still accepted.
    expect((await dep.signedSession({ timestamp: new Date(clock.now().getTime() - 5 * MINUTE) })).status).toBe(200);
    expect((await dep.signedSession({ timestamp: new Date(clock.now().getTime() + 5 * MINUTE) })).status).toBe(200);
  });

  it('answers 400 for a missing header, missing or duplicated parameters, another method or version', async () => {
    const url = `${sim.url}/session`;
    const base = { 'User-Agent': UA, 'Content-Type': JSON_TYPE };
    expect((await http(url, { headers: base })).text).toBe('oauth_problem=parameter_absent');
    const good = oauth1AuthorizationHeader('GET', url, dep.creds, { timestamp: clock.now() });
    const noNonce = good.replace(/, oauth_nonce="[^"]*"/, '');
    expect(await http(url, { headers: { ...base, Authorization: noNonce } })).toMatchObject({ status: 400, text: 'oauth_problem=parameter_absent' });
    const dup = `${good}, oauth_nonce="again"`;
    expect(await http(url, { headers: { ...base, Authorization: dup } })).toMatchObject({ status: 400, text: 'oauth_problem=parameter_rejected' });
    const plaintext = oauth1AuthorizationHeader('GET', url, dep.creds, { timestamp: clock.now(), signatureMethod: 'PLAINTEXT' });
    expect(await http(url, { headers: { ...base, Authorization: plaintext } })).toMatchObject({ status: 400, text: 'oauth_problem=signature_method_rejected' });
    const v2 = oauth1AuthorizationHeader('GET', url, dep.creds, { timestamp: clock.now(), version: '2.0' });
    expect(await http(url, { headers: { ...base, Authorization: v2 } })).toMatchObject({ status: 400, text: 'oauth_problem=version_rejected' });
    const callback = good.replace('OAuth ', 'OAuth oauth_callback="oob", ');
    expect(await http(url, { headers: { ...base, Authorization: callback } })).toMatchObject({ status: 400, text: 'oauth_problem=parameter_rejected' });
    expect((await http(url, { method: 'POST', headers: { ...base, Authorization: good } })).status).toBe(405);
  });

  it('requires the JSON media type on /session, as depsim does', async () => {
    const r = await dep.signedSession({ headers: { 'Content-Type': 'text/plain' } });
    expect([r.status, r.text]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    expect((await dep.signedSession({ headers: { 'Content-Type': 'application/json; charset=utf-8' } })).status).toBe(200);
  });

  it('rejects the previous token after a new download (token_rejected), and its sessions', async () => {
    await dep.login();
    expect((await dep.call('GET', '/account')).status).toBe(200);
    const fresh = credentialsFromP7m(sim.downloadServerToken(serverUuid), tokenRecipient().keyPem);
    // The session made with the old token dies with it.
    const stale = await dep.call('GET', '/account');
    expect([stale.status, stale.text]).toEqual([401, 'UNAUTHORIZED']);
    const old = await dep.signedSession();
    expect([old.status, old.text]).toEqual([401, 'oauth_problem=token_rejected']);
    // A token that never existed.
    const unknown = await dep.signedSession({ creds: { ...fresh, consumerKey: 'CK_unknown' } });
    expect([unknown.status, unknown.text]).toEqual([401, 'oauth_problem=consumer_key_unknown']);
    const mixed = await dep.signedSession({ creds: { ...fresh, accessToken: dep.creds.accessToken } });
    expect([mixed.status, mixed.text]).toEqual([401, 'oauth_problem=token_rejected']);
    dep.creds = fresh;
    expect((await dep.signedSession()).status).toBe(200);
  });

  it('rejects an expired access token with 401 token_expired', async () => {
    const s = connectServer(sim, 'Short-lived', { expiresAt: new Date(clock.now().getTime() + 60 * MINUTE) });
    const d = new Dep(sim, s.creds, { now: () => clock.now() });
    expect((await d.signedSession()).status).toBe(200);
    clock.advance(60 * MINUTE);
    const r = await d.signedSession();
    expect([r.status, r.text]).toEqual([401, 'oauth_problem=token_expired']);
  });

  it('puts access_token_expiry one year ahead by default', () => {
    const { serverUuid: uuid } = sim.createMdmServer('Expiry');
    sim.uploadPublicKey(uuid, tokenRecipient().certPem);
    const p7m = sim.downloadServerToken(uuid);
    expect(p7m).toContain('Content-Type: application/pkcs7-mime');
    const { keyPem } = tokenRecipient();
    const t = credentialsFromP7m(p7m, keyPem);
    expect(t.consumerKey).toMatch(/^CK_[0-9a-f]{128}$/);
    expect(t.accessToken).toMatch(/^AT_O[0-9a-f]+$/);
  });

  it('answers 403 T_C_NOT_SIGNED to every call while the terms are not accepted', async () => {
    await dep.login();
    sim.setTermsSigned(false);
    const s = await dep.signedSession();
    expect([s.status, s.text]).toEqual([403, 'T_C_NOT_SIGNED']);
    for (const [method, path, body] of [['GET', '/account'], ['POST', '/server/devices', {}], ['POST', '/profile', { profile_name: 'p', url: 'https://x.example' }]] as const) {
      const r = await dep.call(method, path, body);
      expect([r.status, r.text], path).toEqual([403, 'T_C_NOT_SIGNED']);
    }
    sim.setTermsSigned(true);
    expect((await dep.call('GET', '/account')).status).toBe(200);
  });

  it('expires sessions after sessionTtlMs; a refreshed X-ADM-Auth-Session keeps a client going', async () => {
    const first = await dep.login();
    clock.advance(20 * MINUTE);
    const r = await dep.call('GET', '/account');
    expect(r.status).toBe(200);
    const refreshed = r.headers.get('x-adm-auth-session');
    expect(refreshed).toMatch(/^[0-9a-f]{32}$/);
    expect(refreshed).not.toBe(first);
    clock.advance(10 * MINUTE);
    // The first session is 30 minutes old now; the refreshed one is 10.
    const withOld = await http(`${sim.url}/account`, { headers: { 'User-Agent': UA, 'X-Server-Protocol-Version': '7', 'X-ADM-Auth-Session': first } });
    expect([withOld.status, withOld.text]).toEqual([401, 'UNAUTHORIZED']);
    expect((await dep.call('GET', '/account')).status).toBe(200);
    sim.expireSessions();
    expect((await dep.call('GET', '/account')).status).toBe(401);
  });

  it('answers 401 UNAUTHORIZED without a session or with an unknown one', async () => {
    const none = await http(`${sim.url}/account`, { headers: { 'User-Agent': UA } });
    expect([none.status, none.text]).toEqual([401, 'UNAUTHORIZED']);
    const unknown = await http(`${sim.url}/account`, { headers: { 'User-Agent': UA, 'X-ADM-Auth-Session': 'deadbeef' } });
    expect(unknown.status).toBe(401);
  });

  it('checks the User-Agent: missing, empty or a bare library default is refused', async () => {
    await dep.login();
    const noUa = await http(`${sim.url}/account`, { headers: { 'User-Agent': '', 'X-ADM-Auth-Session': dep.session! } });
    expect([noUa.status, noUa.text]).toEqual([400, 'USER_AGENT_MISSING']);
    for (const ua of ['nanodep-godep/0', 'Go-http-client/1.1', 'node', 'python-requests/2.31.0', 'axios/1.6.0', 'bad\u00e9agent']) {
      const r = await http(`${sim.url}/account`, { headers: { 'User-Agent': ua, 'X-ADM-Auth-Session': dep.session! } });
      expect([r.status, r.text], ua).toEqual([400, 'USER_AGENT_INVALID']);
    }
    for (const ua of ['nanodep-g-o-dep/0', 'curl/8.5.0', 'OpenEnroll/0.1.0', 'commandment']) {
      const r = await http(`${sim.url}/account`, { headers: { 'User-Agent': ua, 'X-ADM-Auth-Session': dep.session! } });
      expect(r.status, ua).toBe(200);
    }
    const s = await new Dep(sim, dep.creds, { now: () => clock.now(), userAgent: 'Go-http-client/1.1' }).signedSession();
    expect([s.status, s.text]).toEqual([400, 'USER_AGENT_INVALID']);
  });

  it('answers as protocol version 1 without X-Server-Protocol-Version, and 400 for a malformed one', async () => {
    const [serial] = sim.generateDevices(1, { serverUuid, prefix: 'IPAD' });
    const ipad = sim.device(serial!)!;
    const details = async (version: string | null) => {
      const d = new Dep(sim, dep.creds, { now: () => clock.now(), version });
      const r = await d.call('POST', '/devices', { devices: [serial] });
      return r.json.devices[serial!];
    };
    expect(ipad.device_family).toBe('iPad');
    const v1 = await details(null);
    expect(v1.response_status).toBe('SUCCESS');
    expect(v1).not.toHaveProperty('os');
    expect(v1).not.toHaveProperty('device_family');
    expect(await details('3')).toMatchObject({ os: 'iOS', device_family: 'iPad' });
    expect(await details('7')).toMatchObject({ os: 'iPadOS', device_family: 'iPad' });
    const bad = await new Dep(sim, dep.creds, { now: () => clock.now(), version: 'seven' }).call('GET', '/account');
    expect([bad.status, bad.text]).toEqual([400, 'INVALID_PROTOCOL_VERSION']);
  });

  it('answers 404 for unknown paths and 405 with Allow for wrong methods', async () => {
    await dep.login();
    expect(await dep.call('GET', '/nope')).toMatchObject({ status: 404, text: 'NOT_FOUND' });
    expect(await dep.call('GET', '/account/')).toMatchObject({ status: 404 });
    const r = await dep.call('GET', '/server/devices');
    expect([r.status, r.text, r.headers.get('allow')]).toEqual([405, 'METHOD_NOT_ALLOWED', 'POST']);
    expect((await dep.call('PATCH', '/profile/devices', {})).headers.get('allow')).toBe('POST, PUT, DELETE');
  });

  it('quotes error codes like depsim when asked', async () => {
    const quoted = await startAbmSimulator({ quotedErrors: true });
    try {
      const r = await http(`${quoted.url}/account`, { headers: { 'User-Agent': UA } });
      expect([r.status, r.text]).toEqual([401, '"UNAUTHORIZED"']);
    } finally {
      await quoted.close();
    }
  });

  it('records the DEP requests it served', async () => {
    await dep.login();
    await dep.call('GET', '/account');
    expect(sim.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(['GET /session 200', 'GET /account 200']);
    expect(sim.requests[0]!.at).toEqual(clock.now());
  });
});
