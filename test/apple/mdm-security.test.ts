import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppleModule } from '../../src/apple/module.js';
import { DAY } from '../../src/shared/time.js';
import { testCa, testLeaf } from '../pki/fixtures.js';
import { issueCertificate } from '../../src/pki/certificates.js';
import { commandIn, deviceKey, fixture, mdmHarness, plistBody, sign, type Identity, type MdmHarness } from './mdm-support.js';

/**
 * Every message is authenticated before anything happens: tampered signatures, certificates of
 * another CA (or tenant), revoked or expired ones, a signer bound to another enrollment, unknown
 * devices, oversized or malformed bodies are refused, counted, and change nothing.
 */

const MAX_CHECKIN = 256 * 1024;
const MAX_REPORT = 8 * 1024 * 1024;

describe('MDM message authentication and refusals', () => {
  let h: MdmHarness;
  let a: Identity;
  let b: Identity;
  const A = '00008101-000A1B2C3D4E5F60';
  const B = '00008101-000A1B2C3D4E5F61';

  async function enroll(udid: string): Promise<Identity> {
    const id = await h.identity(await h.intent({ udid }));
    expect((await h.send('checkin', { MessageType: 'Authenticate', UDID: udid, Topic: h.topic, ProductName: 'iPhone13,2', OSVersion: '17.0', SerialNumber: `SN${udid.slice(-6)}` }, id)).statusCode).toBe(200);
    expect((await h.send('checkin', { MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: `PM-${udid}` }, id)).statusCode).toBe(200);
    return id;
  }

  const refusedCount = async () => {
    const metric = await h.t.app.core.metrics.registry.getSingleMetric('openenroll_apple_mdm_messages_total')?.get();
    return (metric?.values ?? []).filter((v) => v.labels.result === 'refused').reduce((n, v) => n + v.value, 0);
  };

  /** Sends, expects the status (and code), and proves nothing changed. */
  async function refused(send: () => Promise<{ statusCode: number; body: string }>, status: number, code?: string) {
    const before = await h.snapshot();
    const count = await refusedCount();
    const res = await send();
    expect(res.statusCode, res.body).toBe(status);
    if (code) expect(JSON.parse(res.body)).toMatchObject({ code });
    expect(await h.snapshot()).toBe(before);
    expect(await refusedCount()).toBe(count + 1);
    return res;
  }

  beforeAll(async () => {
    h = await mdmHarness();
    a = await enroll(A);
    b = await enroll(B);
  });
  afterAll(async () => h.close());

  const idle = (udid: string) => plistBody({ UDID: udid, Status: 'Idle' });
  const tokenUpdate = (udid: string) => plistBody({ MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: 'PM-NEW' });

  it('accepts a correctly signed message (the baseline)', async () => {
    expect((await h.send('server', idle(A), a)).statusCode).toBe(200);
  });

  it('refuses a body changed after signing', async () => {
    const body = tokenUpdate(A);
    const signature = sign(body, a);
    const tampered = Buffer.from(body.toString().replace('PM-NEW', 'PM-EVIL'));
    await refused(() => h.send('checkin', tampered, a, { signature }), 403, 'com.openenroll.mdm.forbidden');
  });

  it('refuses a damaged signature, a garbage header and a missing one', async () => {
    const body = tokenUpdate(A);
    const der = Buffer.from(sign(body, a), 'base64');
    der[der.length - 10]! ^= 0xff;
    await refused(() => h.send('checkin', body, a, { signature: der.toString('base64') }), 403);
    await refused(() => h.send('checkin', body, a, { signature: 'not base64 at all!' }), 403);
    await refused(() => h.send('checkin', body, a, { signature: Buffer.from('hello').toString('base64') }), 403);
    await refused(() => h.send('checkin', body, null), 403);
  });

  it('refuses a certificate from another CA, even naming an enrolled device', async () => {
    const ca = await testCa('Rogue CA');
    const leaf = await testLeaf(ca, { CN: 'Rogue device' });
    await refused(() => h.send('server', idle(A), { keyPem: leaf.keyPem, cert: leaf.cert }), 403, 'com.openenroll.mdm.forbidden');
    await refused(() => h.send('checkin', tokenUpdate(A), { keyPem: leaf.keyPem, cert: leaf.cert }), 403);
  });

  it("refuses another tenant's device certificate (tenant isolation)", async () => {
    const other = await h.t.createTenant('Other');
    const foreign = await h.identity(await h.intent({}, other.tenantId), other.tenantId);
    await refused(() => h.send('checkin', { MessageType: 'Authenticate', UDID: '00008101-0000000000000001', Topic: h.topic }, foreign), 403);
    // And A's certificate means nothing at the other tenant's URL.
    await refused(() => h.send('server', idle(A), a, { tenantId: other.tenantId }), 403);
  });

  it('refuses a certificate signed by our CA but never recorded, revoked, or expired', async () => {
    const apple = h.apple as AppleModule;
    const ca = await apple.scep.authority.find(h.t.store.db, h.tenantId);
    const { publicKeyPem } = await deviceKey();
    const unrecorded = await issueCertificate({
      publicKey: publicKeyPem,
      issuerCertificatePem: ca!.certificate.pem,
      issuerPrivateKeyPem: ca!.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      subject: { CN: 'Unrecorded' },
      validityDays: 30,
      notBefore: new Date(h.clock.now().getTime() - 60_000),
    });
    await refused(() => h.send('server', idle(A), { keyPem: a.keyPem, cert: unrecorded }), 403);

    const c = await enroll('00008101-000A1B2C3D4E5F62');
    await h.t.store.transaction((trx) => apple.scep.identities.revoke(trx, h.tenantId, c.cert.sha256Thumbprint, 'test'));
    await refused(() => h.send('server', idle('00008101-000A1B2C3D4E5F62'), c), 403);

    const now = h.clock.now();
    h.clock.set(new Date(a.cert.notAfter.getTime() + DAY));
    try {
      await refused(() => h.send('server', idle(A), a), 403);
    } finally {
      h.clock.set(now);
    }
  });

  it("refuses a signer bound to another enrollment (B's certificate speaking for A)", async () => {
    await refused(() => h.send('checkin', tokenUpdate(A), b), 403, 'com.openenroll.mdm.forbidden');
    await refused(() => h.send('server', idle(A), b), 403, 'com.openenroll.mdm.forbidden');
    // Nor may it Authenticate as another device (a certificate serves one enrollment).
    await refused(() => h.send('checkin', { MessageType: 'Authenticate', UDID: '00008101-00000000000000AA', Topic: h.topic }, b), 403);
  });

  it('answers unknown devices with com.apple.unrecognized.device', async () => {
    await refused(() => h.send('server', idle('00008101-FFFFFFFFFFFFFFFF'), a), 403, 'com.apple.unrecognized.device');
    await refused(() => h.send('checkin', tokenUpdate('00008101-FFFFFFFFFFFFFFFF'), a), 403, 'com.apple.unrecognized.device');
    // A certificate fresh from SCEP that never authenticated.
    const fresh = await h.identity(await h.intent());
    await refused(() => h.send('checkin', tokenUpdate('00008101-FFFFFFFFFFFFFFFE'), fresh), 403, 'com.apple.unrecognized.device');
  });

  it('limits check-ins to 256 KiB and reports to 8 MiB (413 beyond), boundaries included', async () => {
    // Whitespace before the closing tag keeps the property list valid at any size.
    const pad = (body: Buffer, size: number) => Buffer.concat([body.subarray(0, body.length - '</plist>'.length), Buffer.alloc(size - body.length, ' '), Buffer.from('</plist>')]);
    const get = plistBody({ MessageType: 'GetBootstrapToken', UDID: A });
    expect(get.toString().endsWith('</plist>')).toBe(true);
    const atLimit = pad(get, MAX_CHECKIN);
    expect(atLimit.length).toBe(MAX_CHECKIN);
    expect((await h.send('checkin', atLimit, a)).statusCode).toBe(200);
    await refused(() => h.send('checkin', pad(get, MAX_CHECKIN + 1), a), 413);

    const reportAtLimit = pad(idle(A), MAX_REPORT);
    expect((await h.send('server', reportAtLimit, a)).statusCode).toBe(200);
    await refused(() => h.send('server', pad(idle(A), MAX_REPORT + 1), a), 413);
  });

  it('refuses malformed bodies: not XML, entities, binary plists, wrong shapes, unknown types', async () => {
    const bad = (text: string | Buffer) => refused(() => h.send('checkin', text, a), 400, 'com.openenroll.mdm.badRequest');
    await bad('<plist><dict><key>MessageType</key><string>TokenUpdate</string>');
    await bad(
      `<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY x "TokenUpdate">]><plist version="1.0"><dict><key>MessageType</key><string>&x;</string><key>UDID</key><string>${A}</string></dict></plist>`,
    );
    await bad(Buffer.concat([Buffer.from('bplist00'), crypto.randomBytes(40)]));
    await bad('<?xml version="1.0"?><plist version="1.0"><array><string>Authenticate</string></array></plist>');
    await bad(plistBody({ MessageType: 'Reboot', UDID: A }));
    await bad(plistBody({ MessageType: 'TokenUpdate', Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: 'x' }));
    await bad(plistBody({ MessageType: 'TokenUpdate', UDID: A, Topic: h.topic, Token: 'not data', PushMagic: 'x' }));
    await bad(plistBody({ MessageType: 'TokenUpdate', UDID: A, Topic: 'com.example.push', Token: crypto.randomBytes(32), PushMagic: 'x' }));
    await bad(plistBody({ MessageType: 'TokenUpdate', UDID: 'bad/udid', Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: 'x' }));
    await refused(() => h.send('server', plistBody({ UDID: A, Status: 'Maybe' }), a), 400);
    await refused(() => h.send('server', plistBody({ UDID: A, Status: 'Acknowledged' }), a), 400);
  });

  it('refuses other content types (415) and bad tenant ids', async () => {
    await refused(() => h.send('checkin', tokenUpdate(A), a, { contentType: 'application/json' }), 415);
    await refused(() => h.send('checkin', tokenUpdate(A), a, { contentType: 'application/x-apple-aspen-mdm' }), 415);
    await refused(() => h.send('checkin', tokenUpdate(A), a, { tenantId: 'not..a..tenant' }), 404);
    await refused(() => h.send('checkin', tokenUpdate(A), a, { tenantId: crypto.randomUUID() }), 403);
  });

  it("refuses a TokenUpdate for another push topic than the tenant's", async () => {
    const body = plistBody({ MessageType: 'TokenUpdate', UDID: A, Topic: 'com.apple.mgmt.External.00000000-0000-0000-0000-000000000000', Token: crypto.randomBytes(32), PushMagic: 'PM' });
    await refused(() => h.send('checkin', body, a), 403);
  });

  it('refuses an Authenticate the intent does not allow: another device, expired, already used', async () => {
    const auth = (udid: string, serial?: string) => ({ MessageType: 'Authenticate', UDID: udid, Topic: h.topic, ...(serial ? { SerialNumber: serial } : {}) });
    const forOther = await h.identity(await h.intent({ udid: '00008101-0000000000000BBB' }));
    await refused(() => h.send('checkin', auth('00008101-0000000000000CCC'), forOther), 403);
    const forSerial = await h.identity(await h.intent({ serialNumber: 'SERIAL-ONE' }));
    await refused(() => h.send('checkin', auth('00008101-0000000000000DDD', 'SERIAL-TWO'), forSerial), 403);

    const expiring = await h.identity(await h.intent({ expiresAt: new Date(h.clock.now().getTime() + 60_000) }));
    const now = h.clock.now();
    h.clock.set(now.getTime() + 120_000);
    try {
      await refused(() => h.send('checkin', auth('00008101-0000000000000EEE'), expiring), 403);
    } finally {
      h.clock.set(now);
    }
    // A's intent was consumed by its first TokenUpdate; a second certificate for it can't start another enrollment.
    const aIntent = (await h.t.store.db.selectFrom('issued_certificates').select('intent_id').where('thumbprint_sha256', '=', a.cert.sha256Thumbprint).executeTakeFirstOrThrow()).intent_id!;
    const again = await h.identity(aIntent);
    await refused(() => h.send('checkin', auth('00008101-0000000000000FFF'), again), 403);
    // A certificate bound to nothing.
    const unbound = await h.identity(null);
    await refused(() => h.send('checkin', auth('00008101-0000000000000ABC'), unbound), 403);
  });

  it('after all that, A and B still work', async () => {
    // A's first command (served earlier, never answered) is served again.
    expect(commandIn(await h.send('server', idle(A), a))?.requestType).toBe('DeviceInformation');
    expect((await h.send('server', idle(B), b)).statusCode).toBe(200);
    expect((await h.send('checkin', fixture('checkin-getbootstraptoken-macos14.plist').toString().replace('9E5A1A3C-7B2D-5F4E-8C61-0D3F2A9B4E7C', A), a)).statusCode).toBe(200);
  });
});

describe('client certificate forwarded by a trusted proxy', () => {
  const udid = '00008101-00000000000C1E17';
  const header = (id: Identity) => ({ 'x-client-cert': encodeURIComponent(id.cert.pem) });

  it('takes the certificate from the configured header when the peer is a trusted proxy', async () => {
    const h = await mdmHarness({ env: { OPENENROLL_MDM_CLIENT_CERT_HEADER: 'X-Client-Cert', OPENENROLL_TRUST_PROXY: '127.0.0.1/8,::1' } });
    try {
      const id = await h.identity(await h.intent());
      const auth = await h.send('checkin', { MessageType: 'Authenticate', UDID: udid, Topic: h.topic }, null, { headers: header(id) });
      expect(auth.statusCode, auth.body).toBe(200);
      // RFC 9440 form too.
      const rfc = { 'x-client-cert': `:${id.cert.der.toString('base64')}:` };
      const tu = await h.send('checkin', { MessageType: 'TokenUpdate', UDID: udid, Topic: h.topic, Token: crypto.randomBytes(32), PushMagic: 'PM' }, null, { headers: rfc });
      expect(tu.statusCode, tu.body).toBe(200);
      // A signature, when present, is still checked first.
      const bad = await h.send('server', plistBody({ UDID: udid, Status: 'Idle' }), null, { headers: header(id), signature: Buffer.from('junk').toString('base64') });
      expect(bad.statusCode).toBe(403);
      const garbage = await h.send('server', plistBody({ UDID: udid, Status: 'Idle' }), null, { headers: { 'x-client-cert': '%E0%A4%A' } });
      expect(garbage.statusCode).toBe(403);
    } finally {
      await h.close();
    }
  });

  it('ignores the header from a peer that is not a trusted proxy', async () => {
    const h = await mdmHarness({ env: { OPENENROLL_MDM_CLIENT_CERT_HEADER: 'X-Client-Cert', OPENENROLL_TRUST_PROXY: '10.0.0.0/8' } });
    try {
      const id = await h.identity(await h.intent());
      const before = await h.snapshot();
      const res = await h.send('checkin', { MessageType: 'Authenticate', UDID: udid, Topic: h.topic }, null, { headers: header(id) });
      expect(res.statusCode).toBe(403);
      expect(await h.snapshot()).toBe(before);
    } finally {
      await h.close();
    }
  });
});
