import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlistDict, type PlistValue } from '../../src/shared/plist.js';
import { commandIn, fixture, mdmHarness, plistBody, type Json, type MdmHarness } from './mdm-support.js';

/** Check-in messages: every MessageType, the public fixtures and realistic iOS 17 / macOS 14 ones, and the state each leaves. */

const IPAD_UDID = '663b07bb783e9ade1dae4fbb92ea12afc0ce5b69';
const IMAC_UDID = '66ADE930-5FDF-5EC4-8429-15640684C489';
const MAC_UDID = '9E5A1A3C-7B2D-5F4E-8C61-0D3F2A9B4E7C';
const UE_ID = '6F1C2A3B-4D5E-4F60-8172-93A4B5C6D7E8';

describe('MDM check-in', () => {
  let h: MdmHarness;
  const enrollment = (key: string) => h.t.store.db.selectFrom('mdm_enrollments').selectAll().where('channel_key', '=', key).executeTakeFirstOrThrow();
  const queue = (enrollmentId: string) =>
    h.t.store.db
      .selectFrom('mdm_command_queue as q')
      .innerJoin('mdm_commands as c', 'c.uuid', 'q.command_uuid')
      .select(['q.status', 'q.seq', 'q.after_prior', 'c.request_type', 'c.command_plist', 'q.command_uuid', 'q.push_sent_at'])
      .where('q.enrollment_id', '=', enrollmentId)
      .orderBy('q.seq')
      .execute();
  const device = async (id: string): Promise<Json> => h.ok({ method: 'GET', url: `/beta/deviceManagement/managedDevices/${id}` });

  beforeAll(async () => {
    h = await mdmHarness();
  });
  afterAll(async () => h.close());

  it('accepts the macOS 10.12.6 Authenticate fixture: the enrollment exists, disabled, bound to the signer', async () => {
    const intentId = await h.intent({ platform: 'macOS', udid: IMAC_UDID, serialNumber: 'C02MT66KFLHH' });
    const id = await h.identity(intentId);
    const res = await h.send('checkin', fixture('checkin-authenticate-macos-10.12.6.plist'), id);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toBe('');
    const e = await enrollment(`device:${IMAC_UDID}`);
    expect(e).toMatchObject({
      type: 'Device',
      udid: IMAC_UDID,
      serial_number: 'C02MT66KFLHH',
      platform: 'macOS',
      enabled: 0,
      token_update_tally: 0,
      intent_id: intentId,
      topic: h.topic,
      push_token: null,
      enrolled_at: null,
      cert_thumbprint: id.cert.sha256Thumbprint,
    });
    expect(JSON.parse(e.device_info!)).toEqual({
      buildVersion: '16G2136',
      deviceName: 'Fruit',
      model: 'iMac14,2',
      modelName: 'iMac',
      osVersion: '10.12.6',
      productName: 'iMac14,2',
      serialNumber: 'C02MT66KFLHH',
    });
    const cert = await h.t.store.db.selectFrom('issued_certificates').selectAll().where('thumbprint_sha256', '=', id.cert.sha256Thumbprint).executeTakeFirstOrThrow();
    expect(cert.enrollment_id).toBe(e.id);
    // The intent is consumed by the first TokenUpdate, not here.
    const intent = await h.t.store.db.selectFrom('enrollment_intents').selectAll().where('id', '=', intentId).executeTakeFirstOrThrow();
    expect(intent.consumed_at).toBeNull();

    // Its first TokenUpdate completes the enrollment: the managed device, the intent consumed, DeviceInformation queued.
    const token = crypto.randomBytes(32);
    const tu = await h.send('checkin', { MessageType: 'TokenUpdate', UDID: IMAC_UDID, Topic: h.topic, Token: token, PushMagic: 'A1B2C3D4-0000-4000-8000-000000000001', AwaitingConfiguration: false }, id);
    expect(tu.statusCode, tu.body).toBe(200);
    const after = await enrollment(`device:${IMAC_UDID}`);
    expect(after).toMatchObject({ enabled: 1, token_update_tally: 1, push_token: token.toString('hex'), push_magic: 'A1B2C3D4-0000-4000-8000-000000000001' });
    expect(after.enrolled_at).not.toBeNull();
    expect(after.managed_device_id).not.toBeNull();
    const md = await device(after.managed_device_id!);
    expect(md).toMatchObject({
      operatingSystem: 'macOS',
      osVersion: '10.12.6',
      model: 'iMac14,2',
      manufacturer: 'Apple',
      deviceType: 'macMDM',
      serialNumber: 'C02MT66KFLHH',
      udid: IMAC_UDID,
      deviceName: 'Fruit',
      managedDeviceOwnerType: 'personal',
      deviceEnrollmentType: 'userEnrollment',
      managementAgent: 'mdm',
      managementState: 'managed',
      managementCertificateExpirationDate: id.cert.notAfter.toISOString(),
    });
    const consumed = await h.t.store.db.selectFrom('enrollment_intents').select('consumed_at').where('id', '=', intentId).executeTakeFirstOrThrow();
    expect(consumed.consumed_at).not.toBeNull();
    const q = await queue(after.id);
    expect(q.map((r) => r.request_type)).toEqual(['DeviceInformation']);
    // The command is pushed once the transaction commits (a durable job).
    const job = await h.t.store.db.selectFrom('jobs').select(['kind', 'status']).where('kind', '=', 'apple.mdm.push').executeTakeFirst();
    expect(job).toMatchObject({ status: 'pending' });
  });

  it('accepts the iPad iOS 9 TokenUpdate fixture with its UnlockToken (kept encrypted)', async () => {
    const intentId = await h.intent({ platform: 'iOS' });
    const id = await h.identity(intentId);
    const auth = await h.send('checkin', { MessageType: 'Authenticate', UDID: IPAD_UDID, Topic: h.topic, OSVersion: '9.3.5', BuildVersion: '13G36', ProductName: 'iPad2,5', SerialNumber: 'DLXJ9ABCDF18' }, id);
    expect(auth.statusCode, auth.body).toBe(200);
    const body = fixture('checkin-tokenupdate-ipad-ios9-unlocktoken.plist');
    const res = await h.send('checkin', body, id);
    expect(res.statusCode, res.body).toBe(200);
    const e = await enrollment(`device:${IPAD_UDID}`);
    const sent = parsePlistDict(body);
    expect(e).toMatchObject({
      enabled: 1,
      push_token: (sent.Token as Buffer).toString('hex'),
      push_magic: 'CEFDF0BD-E342-4A27-8742-E930EA116B0A',
      awaiting_configuration: 0,
    });
    expect(e.push_token).toBe('47e8eec062c2f729ec1703c1b3e18f1971d85f00be76445d34080baa701b5f51');
    const secret = await h.t.store.db.selectFrom('secrets').selectAll().where('id', '=', e.unlock_token_secret_id!).executeTakeFirstOrThrow();
    expect(secret.kind).toBe('appleUnlockToken');
    expect(secret.ciphertext).not.toContain((sent.UnlockToken as Buffer).toString('base64').slice(0, 16));
    expect(await h.t.app.core.secrets.get(h.t.store.db, h.tenantId, secret.id)).toEqual(sent.UnlockToken);
    const md = await device(e.managed_device_id!);
    expect(md).toMatchObject({ operatingSystem: 'iPadOS', deviceType: 'iPad', model: 'iPad2,5', osVersion: '9.3.5', serialNumber: 'DLXJ9ABCDF18', udid: IPAD_UDID });
  });

  it('accepts the iOS 11 CheckOut fixture: disabled, pending commands cancelled, device retirePending, identity revoked', async () => {
    // The fixture's topic is another push certificate's: a tenant of its own.
    const other = await h.t.createTenant('XServer tenant');
    await h.pushCertificate('com.apple.mgmt.XServer.1c111c11-1c11-1c11-1c11-1c111c111c11', other);
    const udid = '1c111c111c111c111c111c111c111c111c111c11';
    const topic = 'com.apple.mgmt.XServer.1c111c11-1c11-1c11-1c11-1c111c111c11';
    const intentId = await h.intent({ platform: 'iOS' }, other.tenantId);
    const id = await h.identity(intentId, other.tenantId);
    const opts = { tenantId: other.tenantId };
    expect((await h.send('checkin', { MessageType: 'Authenticate', UDID: udid, Topic: topic, OSVersion: '11.3.1', ProductName: 'iPhone10,4', SerialNumber: 'FFMXC1ABJCLM' }, id, opts)).statusCode).toBe(200);
    expect((await h.send('checkin', { MessageType: 'TokenUpdate', UDID: udid, Topic: topic, Token: crypto.randomBytes(32), PushMagic: 'PM-1' }, id, opts)).statusCode).toBe(200);
    const e = await enrollment(`device:${udid}`);
    expect((await queue(e.id)).map((r) => r.status)).toEqual(['queued']);

    const res = await h.send('checkin', fixture('checkin-checkout-ios11.plist'), id, opts);
    expect(res.statusCode, res.body).toBe(200);
    const out = await enrollment(`device:${udid}`);
    expect(out).toMatchObject({ enabled: 0, push_token: null, push_magic: null });
    expect(out.checked_out_at).not.toBeNull();
    expect((await queue(e.id)).map((r) => r.status)).toEqual(['Cancelled']);
    const md = await h.ok({ method: 'GET', url: `/beta/deviceManagement/managedDevices/${e.managed_device_id}`, key: other.adminKey });
    expect(md.managementState).toBe('retirePending');
    const cert = await h.t.store.db.selectFrom('issued_certificates').select('revoked_at').where('thumbprint_sha256', '=', id.cert.sha256Thumbprint).executeTakeFirstOrThrow();
    expect(cert.revoked_at).not.toBeNull();
    // Nothing more is accepted from it.
    const again = await h.send('server', { UDID: udid, Status: 'Idle' }, id, opts);
    expect(again.statusCode).toBe(403);
  });

  it('accepts iOS 17 Authenticate and TokenUpdate (ADE-style, awaiting configuration)', async () => {
    const intentId = await h.intent({ platform: 'iOS', source: 'ade', ownership: 'company', deviceEnrollmentType: 'appleBulkWithoutUser', serialNumber: 'F17XK2ABCD12' });
    const id = await h.identity(intentId);
    expect((await h.send('checkin', fixture('checkin-authenticate-ios17.plist'), id)).statusCode).toBe(200);
    const res = await h.send('checkin', fixture('checkin-tokenupdate-ios17-awaiting.plist'), id);
    expect(res.statusCode, res.body).toBe(200);
    const e = await enrollment('device:00008120-001A2C3E0E6B401E');
    expect(e).toMatchObject({ enabled: 1, awaiting_configuration: 1, serial_number: 'F17XK2ABCD12' });
    const md = await device(e.managed_device_id!);
    expect(md).toMatchObject({
      operatingSystem: 'iOS',
      deviceType: 'iPhone',
      model: 'iPhone15,2',
      osVersion: '17.4.1',
      imei: '353917112345678',
      meid: '35391711234567',
      managedDeviceOwnerType: 'company',
      deviceEnrollmentType: 'appleBulkWithoutUser',
    });
    // Awaiting configuration: DeviceConfigured is queued last, behind everything queued before it.
    const q = await queue(e.id);
    expect(q.map((r) => [r.request_type, r.after_prior])).toEqual([
      ['DeviceInformation', 0],
      ['DeviceConfigured', 1],
    ]);
  });

  it('keys User Enrollment by EnrollmentID and keeps hardware identifiers out of the record', async () => {
    const intentId = await h.intent({ enrollmentType: 'user', platform: 'iOS', deviceEnrollmentType: 'appleUserEnrollment', source: 'userEnrollment' });
    const id = await h.identity(intentId);
    expect((await h.send('checkin', fixture('checkin-authenticate-ios17-user-enrollment.plist'), id)).statusCode).toBe(200);
    expect((await h.send('checkin', fixture('checkin-tokenupdate-ios17-user-enrollment.plist'), id)).statusCode).toBe(200);
    const e = await enrollment(`ue:${UE_ID}`);
    expect(e).toMatchObject({ type: 'UserEnrollmentDevice', udid: null, apple_enrollment_id: UE_ID, enabled: 1, serial_number: null });
    const md = await device(e.managed_device_id!);
    expect(md).toMatchObject({ udid: null, serialNumber: null, imei: null, model: 'iPhone14,5', deviceEnrollmentType: 'appleUserEnrollment', managedDeviceOwnerType: 'personal' });
    const row = await h.t.store.db.selectFrom('managed_devices').select('enrollment_id').where('id', '=', md.id).executeTakeFirstOrThrow();
    expect(row.enrollment_id).toBe(UE_ID);
    // Its DeviceInformation asks nothing User Enrollment forbids.
    const [cmd] = await queue(e.id);
    const queries = ((parsePlistDict(cmd!.command_plist).Command as Record<string, PlistValue>).Queries as string[]).sort();
    expect(queries).not.toContain('SerialNumber');
    expect(queries).not.toContain('UDID');
    // A device certificate can't authenticate as a User Enrollment, nor the reverse.
    const deviceIntent = await h.intent({ enrollmentType: 'device' });
    const wrong = await h.send('checkin', fixture('checkin-authenticate-ios17-user-enrollment.plist').toString().replace(UE_ID, crypto.randomUUID().toUpperCase()), await h.identity(deviceIntent));
    expect(wrong.statusCode).toBe(403);
  });

  describe('macOS 14: user channel, bootstrap token, Setup Assistant', () => {
    let id: Awaited<ReturnType<MdmHarness['identity']>>;
    beforeAll(async () => {
      id = await h.identity(await h.intent({ platform: 'macOS', source: 'userInitiated', deviceEnrollmentType: 'userEnrollment' }));
      expect((await h.send('checkin', fixture('checkin-authenticate-macos14.plist'), id)).statusCode).toBe(200);
      expect((await h.send('checkin', fixture('checkin-tokenupdate-macos14-awaiting.plist'), id)).statusCode).toBe(200);
    });

    it('accepts a user channel TokenUpdate: a user enrollment row under the device', async () => {
      const res = await h.send('checkin', fixture('checkin-tokenupdate-macos14-user.plist'), id);
      expect(res.statusCode, res.body).toBe(200);
      const deviceRow = await enrollment(`device:${MAC_UDID}`);
      const user = await enrollment(`device:${MAC_UDID}/user:B5E2F6A1-3C4D-4E5F-9A0B-1C2D3E4F5A6B`);
      expect(user).toMatchObject({
        type: 'User',
        device_enrollment_id: deviceRow.id,
        udid: MAC_UDID,
        apple_user_id: 'B5E2F6A1-3C4D-4E5F-9A0B-1C2D3E4F5A6B',
        user_short_name: 'ada',
        user_long_name: 'Ada Lovelace',
        enabled: 1,
        token_update_tally: 1,
        managed_device_id: deviceRow.managed_device_id,
      });
      const view = await h.ok({ method: 'GET', url: `/beta/deviceManagement/managedDevices/${deviceRow.managed_device_id}/appleMdmEnrollment` });
      expect(view.userChannels).toEqual([expect.objectContaining({ userShortName: 'ada', userLongName: 'Ada Lovelace', enabled: true })]);
      // The user channel polls its own queue.
      const idle = await h.send('server', { UDID: MAC_UDID, UserID: 'B5E2F6A1-3C4D-4E5F-9A0B-1C2D3E4F5A6B', Status: 'Idle' }, id);
      expect(commandIn(idle)).toBeNull();
    });

    it('escrows the bootstrap token encrypted, hands it back, and removes it when the device sends none', async () => {
      const set = await h.send('checkin', fixture('checkin-setbootstraptoken-macos14.plist'), id);
      expect(set.statusCode, set.body).toBe(200);
      const e = await enrollment(`device:${MAC_UDID}`);
      const token = parsePlistDict(fixture('checkin-setbootstraptoken-macos14.plist')).BootstrapToken as Buffer;
      const secret = await h.t.store.db.selectFrom('secrets').selectAll().where('id', '=', e.bootstrap_token_secret_id!).executeTakeFirstOrThrow();
      expect(secret.kind).toBe('appleBootstrapToken');
      expect(secret.ciphertext.includes(token.toString('base64url').slice(0, 12))).toBe(false);
      const view = await h.ok({ method: 'GET', url: `/beta/deviceManagement/managedDevices/${e.managed_device_id}/appleMdmEnrollment` });
      expect(view).toMatchObject({ bootstrapTokenEscrowed: true, enrollmentType: 'Device', awaitingConfiguration: true });

      const get = await h.send('checkin', fixture('checkin-getbootstraptoken-macos14.plist'), id);
      expect(get.statusCode).toBe(200);
      expect(get.headers['content-type']).toMatch(/^application\/xml/);
      expect(parsePlistDict(get.body).BootstrapToken).toEqual(token);

      expect((await h.send('checkin', { MessageType: 'SetBootstrapToken', UDID: MAC_UDID, BootstrapToken: Buffer.alloc(0) }, id)).statusCode).toBe(200);
      const cleared = await enrollment(`device:${MAC_UDID}`);
      expect(cleared.bootstrap_token_secret_id).toBeNull();
      expect(await h.t.store.db.selectFrom('secrets').select('id').where('id', '=', e.bootstrap_token_secret_id!).executeTakeFirst()).toBeUndefined();
      const none = await h.send('checkin', fixture('checkin-getbootstraptoken-macos14.plist'), id);
      expect(parsePlistDict(none.body)).toEqual({});
    });

    it('declines UserAuthenticate with 410 (user channels for network users are off by default)', async () => {
      const res = await h.send('checkin', { MessageType: 'UserAuthenticate', UDID: MAC_UDID, UserID: 'C0FFEE00-0000-4000-8000-000000000001', DigestResponse: '' }, id);
      expect(res.statusCode).toBe(410);
    });

    it('refuses GetToken (no token service is offered)', async () => {
      const res = await h.send('checkin', { MessageType: 'GetToken', UDID: MAC_UDID, TokenServiceType: 'com.apple.maid' }, id);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'com.openenroll.mdm.badRequest' });
    });
  });

  describe('DeclarativeManagement', () => {
    let id: Awaited<ReturnType<MdmHarness['identity']>>;
    const udid = '00008110-000E55A21E43801E';
    beforeAll(async () => {
      id = await h.identity(await h.intent());
      expect((await h.send('checkin', { MessageType: 'Authenticate', UDID: udid, Topic: h.topic, ProductName: 'iPhone14,2', OSVersion: '17.2' }, id)).statusCode).toBe(200);
      expect((await h.send('checkin', { MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: 'PM' }, id)).statusCode).toBe(200);
    });
    const dm = (endpoint: string, extra: Record<string, PlistValue> = {}) => h.send('checkin', { MessageType: 'DeclarativeManagement', UDID: udid, Endpoint: endpoint, ...extra }, id);

    it('answers tokens and declaration-items with the valid empty set, and takes status reports', async () => {
      const tokens = await h.send('checkin', fixture('checkin-declarativemanagement-tokens-ios17.plist').toString().replace('00008120-001A2C3E0E6B401E', udid), id);
      expect(tokens.statusCode).toBe(200);
      expect(tokens.headers['content-type']).toMatch(/^application\/json/);
      const sync = tokens.json();
      expect(sync).toEqual({ SyncTokens: { DeclarationsToken: expect.stringMatching(/^[0-9a-f]{64}$/), Timestamp: '2024-01-01T00:00:00Z' } });
      const items = (await dm('declaration-items')).json();
      expect(items).toEqual({ Declarations: { Activations: [], Assets: [], Configurations: [], Management: [] }, DeclarationsToken: sync.SyncTokens.DeclarationsToken });
      const status = await h.send('checkin', fixture('checkin-declarativemanagement-status-ios17.plist').toString().replace(/00008120-001A2C3E0E6B401E/g, udid), id);
      expect(status.statusCode, status.body).toBe(200);
      expect((await dm('declaration/configuration/com.example.none')).statusCode).toBe(404);
      expect((await dm('status', { Data: Buffer.from('not json') })).statusCode).toBe(400);
      expect((await dm('bogus')).statusCode).toBe(400);
    });
  });

  it('Authenticate again resets the enrollment (NanoMDM): disabled, queue cleared, push data gone; TokenUpdate enables it again', async () => {
    const udid = '00008030-000C1D2E3F4A5B6C';
    const id = await h.identity(await h.intent());
    const auth = { MessageType: 'Authenticate', UDID: udid, Topic: h.topic, ProductName: 'iPhone12,1', OSVersion: '17.1', SerialNumber: 'RESET1ABC' };
    const tu = { MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: 'PM-R' };
    expect((await h.send('checkin', auth, id)).statusCode).toBe(200);
    expect((await h.send('checkin', tu, id)).statusCode).toBe(200);
    const before = await enrollment(`device:${udid}`);
    expect(before.enabled).toBe(1);
    expect((await queue(before.id)).map((r) => r.status)).toEqual(['queued']);

    // Renewal with the certificate already bound to this enrollment.
    expect((await h.send('checkin', auth, id)).statusCode).toBe(200);
    const reset = await enrollment(`device:${udid}`);
    expect(reset).toMatchObject({ id: before.id, enabled: 0, push_token: null, push_magic: null, token_update_tally: 0, managed_device_id: before.managed_device_id });
    // The enrollment stays complete: a renewal isn't a new enrollment.
    expect(reset.enrolled_at).toBe(before.enrolled_at);
    expect((await queue(before.id)).map((r) => r.status)).toEqual(['Cancelled']);
    expect((await h.send('checkin', tu, id)).statusCode).toBe(200);
    expect((await enrollment(`device:${udid}`)).enabled).toBe(1);

    // Re-enrollment after a wipe: a new identity from a new intent takes the enrollment over; the old one is revoked.
    const id2 = await h.identity(await h.intent());
    expect((await h.send('checkin', auth, id2)).statusCode).toBe(200);
    const re = await enrollment(`device:${udid}`);
    expect(re).toMatchObject({ id: before.id, enabled: 0, enrolled_at: null, cert_thumbprint: id2.cert.sha256Thumbprint });
    const old = await h.t.store.db.selectFrom('issued_certificates').select('revoked_at').where('thumbprint_sha256', '=', id.cert.sha256Thumbprint).executeTakeFirstOrThrow();
    expect(old.revoked_at).not.toBeNull();
    expect((await h.send('checkin', tu, id)).statusCode).toBe(403);
    expect((await h.send('checkin', tu, id2)).statusCode).toBe(200);
    const done = await enrollment(`device:${udid}`);
    expect(done.enrolled_at).not.toBeNull();
    // The same device record, enrolled again.
    expect(done.managed_device_id).toBe(before.managed_device_id);
  });

  it('accepts POST as well as PUT, and a check-in sent to ServerURL', async () => {
    const udid = '00008030-000C1D2E3F4A5B99';
    const id = await h.identity(await h.intent());
    const auth = plistBody({ MessageType: 'Authenticate', UDID: udid, Topic: h.topic });
    expect((await h.send('checkin', auth, id, { method: 'POST' })).statusCode).toBe(200);
    const tu = plistBody({ MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: 'PM' });
    expect((await h.send('server', tu, id, { contentType: 'application/x-apple-aspen-mdm-checkin' })).statusCode).toBe(200);
    expect((await enrollment(`device:${udid}`)).enabled).toBe(1);
  });

  it('keeps lastSeenDateTime to the minute: an idle poll within a minute of the last write writes nothing', async () => {
    const udid = '00008030-000C1D2E3F4A5B98';
    const id = await h.identity(await h.intent());
    expect((await h.send('checkin', plistBody({ MessageType: 'Authenticate', UDID: udid, Topic: h.topic }), id)).statusCode).toBe(200);
    expect((await h.send('checkin', plistBody({ MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: 'PM' }), id)).statusCode).toBe(200);
    const seen = async () => (await enrollment(`device:${udid}`)).last_seen_at;
    const first = await seen();
    expect(first).toBe(h.clock.now().toISOString());
    h.clock.advance(59_999);
    expect((await h.send('server', { UDID: udid, Status: 'Idle' }, id)).statusCode).toBe(200);
    expect(await seen()).toBe(first);
    h.clock.advance(1);
    expect((await h.send('server', { UDID: udid, Status: 'Idle' }, id)).statusCode).toBe(200);
    expect(await seen()).toBe(h.clock.now().toISOString());
  });
});

describe('MDM check-in: races and options', () => {
  let h: MdmHarness;
  beforeAll(async () => {
    h = await mdmHarness({ env: { OPENENROLL_MDM_ACCEPT_USER_AUTHENTICATE: 'true' } });
  });
  afterAll(async () => h.close());

  it('two first Authenticates of one device at once make one enrollment', async () => {
    const udid = '00008030-0000000000RACE01';
    const [x, y] = await Promise.all([h.identity(await h.intent()), h.identity(await h.intent())]);
    const auth = { MessageType: 'Authenticate', UDID: udid, Topic: h.topic };
    const results = await Promise.all([h.send('checkin', auth, x), h.send('checkin', auth, y)]);
    expect(results.map((r) => r.statusCode)).toEqual([200, 200]);
    const rows = await h.t.store.db.selectFrom('mdm_enrollments').selectAll().where('udid', '=', udid).execute();
    expect(rows).toHaveLength(1);
    expect([x.cert.sha256Thumbprint, y.cert.sha256Thumbprint]).toContain(rows[0]!.cert_thumbprint);
  });

  it('two first TokenUpdates at once complete the enrollment once', async () => {
    const udid = '00008030-0000000000RACE02';
    const id = await h.identity(await h.intent());
    expect((await h.send('checkin', { MessageType: 'Authenticate', UDID: udid, Topic: h.topic, SerialNumber: 'RACE02' }, id)).statusCode).toBe(200);
    const tu = { MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: 'PM' };
    const results = await Promise.all([h.send('checkin', tu, id), h.send('checkin', tu, id)]);
    expect(results.map((r) => r.statusCode)).toEqual([200, 200]);
    const e = await h.t.store.db.selectFrom('mdm_enrollments').selectAll().where('udid', '=', udid).executeTakeFirstOrThrow();
    expect(e.token_update_tally).toBe(2);
    expect(await h.t.store.db.selectFrom('managed_devices').select('id').where('udid', '=', udid).execute()).toHaveLength(1);
    const cmds = await h.t.store.db.selectFrom('mdm_command_queue').select('status').where('enrollment_id', '=', e.id).execute();
    expect(cmds).toHaveLength(1);
  });

  it('answers UserAuthenticate with a zero-length digest challenge when configured, then accepts the response', async () => {
    const udid = '4B9F2D1C-0000-4000-8000-00000000AAAA';
    const id = await h.identity(await h.intent({ platform: 'macOS' }));
    expect((await h.send('checkin', { MessageType: 'Authenticate', UDID: udid, Topic: h.topic, ProductName: 'Mac14,2' }, id)).statusCode).toBe(200);
    expect((await h.send('checkin', { MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: 'PM' }, id)).statusCode).toBe(200);
    const first = await h.send('checkin', { MessageType: 'UserAuthenticate', UDID: udid, UserID: 'C0FFEE00-0000-4000-8000-000000000001' }, id);
    expect(first.statusCode).toBe(200);
    expect(parsePlistDict(first.body)).toEqual({ DigestChallenge: '' });
    const second = await h.send('checkin', { MessageType: 'UserAuthenticate', UDID: udid, UserID: 'C0FFEE00-0000-4000-8000-000000000001', DigestResponse: 'response' }, id);
    expect(second.statusCode).toBe(200);
    expect(second.body).toBe('');
  });
});
