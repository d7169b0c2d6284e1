import crypto from 'node:crypto';
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRsaKeyPair } from '../../src/pki/keys.js';
import { ManualClock } from '../../src/shared/time.js';
import { startApnsSimulator, type ApnsSimulator, type DeliveredNotification } from '../../sim/apns/index.js';
import { applePushCa } from '../helpers/apple.js';
import { applePushCertificate, testCa, testLeaf } from '../pki/fixtures.js';

/** The simulator as a provider sees it: raw HTTP/2 requests with a client certificate. */

interface Identity {
  certPem: string;
  keyPem: string;
  topic?: string;
  serial: string;
}

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

const TOKEN = 'a1'.repeat(32);
const clock = new ManualClock(Date.now());

let sim: ApnsSimulator;
let push: Identity;

async function pushIdentity(): Promise<Identity> {
  const kp = await generateRsaKeyPair();
  const { cert, topic } = await applePushCertificate(await applePushCa(), kp.publicKeyPem, { notBefore: new Date(Date.now() - 60_000) });
  return { certPem: cert.pem, keyPem: kp.privateKeyPem, topic, serial: cert.serialNumberHex };
}

function connect(id: Identity | null): http2.ClientHttp2Session {
  return http2.connect(sim.url, { ca: sim.caPem, ...(id ? { cert: id.certPem, key: id.keyPem } : {}) });
}

function send(id: Identity | null, opts: { path?: string; method?: string; headers?: http2.OutgoingHttpHeaders; body?: string } = {}): Promise<Answer> {
  const session = connect(id);
  return new Promise<Answer>((resolve, reject) => {
    session.on('error', reject);
    const req = session.request(
      {
        ':method': opts.method ?? 'POST',
        ':path': opts.path ?? `/3/device/${TOKEN}`,
        'apns-push-type': 'mdm',
        ...(id?.topic ? { 'apns-topic': id.topic } : {}),
        ...opts.headers,
      },
      // Node would end a GET stream at once; we want to send the body anyway.
      { endStream: false },
    );
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    let body = '';
    req.on('response', (h) => {
      headers = h;
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => resolve({ status, headers, body }));
    req.on('error', reject);
    req.end(opts.body ?? JSON.stringify({ mdm: 'MAGIC' }));
  }).finally(() => session.close());
}

/** TLS 1.3 finishes the client's handshake before the server checks its certificate: the refusal shows up as a dead stream. */
async function refused(p: Promise<Answer>): Promise<boolean> {
  try {
    return (await p).status === 0;
  } catch {
    return true;
  }
}

const reason = (a: Answer) => (a.body ? (JSON.parse(a.body) as { reason: string }).reason : null);

beforeAll(async () => {
  sim = await startApnsSimulator({ caCertPem: (await applePushCa()).cert.pem, clock });
  push = await pushIdentity();
});
afterAll(async () => sim.close());

describe('APNs simulator', () => {
  it('accepts an MDM push and echoes the apns-id, or makes one', async () => {
    const id = crypto.randomUUID();
    const a = await send(push, { headers: { 'apns-id': id, 'apns-priority': '10', 'apns-expiration': '0' } });
    expect(a).toMatchObject({ status: 200, body: '' });
    expect(a.headers['apns-id']).toBe(id);
    const b = await send(push);
    expect(b.headers['apns-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(sim.pushes.at(-1)).toMatchObject({ token: TOKEN, topic: push.topic, certificateTopic: push.topic, certificateSerial: push.serial, pushMagic: 'MAGIC', status: 200 });
  });

  it('takes the topic from the certificate when no apns-topic is sent (as nanopush does)', async () => {
    const { topic: _t, ...noTopic } = push;
    expect((await send(noTopic)).status).toBe(200);
    expect(sim.pushes.at(-1)).toMatchObject({ topic: null, certificateTopic: push.topic });
  });

  it('refuses what Apple refuses, with its reasons', async () => {
    const cases: Array<[string, Parameters<typeof send>[1], number, string]> = [
      ['GET', { method: 'GET', body: '' }, 405, 'MethodNotAllowed'],
      ['path', { path: '/3/devices/' + TOKEN }, 404, 'BadPath'],
      ['empty token', { path: '/3/device/' }, 400, 'MissingDeviceToken'],
      ['short token', { path: '/3/device/' + 'ab'.repeat(31) }, 400, 'BadDeviceToken'],
      ['odd token', { path: '/3/device/' + TOKEN + 'a' }, 400, 'BadDeviceToken'],
      ['non-hex token', { path: '/3/device/' + 'zz'.repeat(32) }, 400, 'BadDeviceToken'],
      ['other topic', { headers: { 'apns-topic': 'com.apple.mgmt.External.other' } }, 400, 'TopicDisallowed'],
      ['push type', { headers: { 'apns-push-type': 'alert' } }, 400, 'InvalidPushType'],
      ['unknown push type', { headers: { 'apns-push-type': 'nope' } }, 400, 'InvalidPushType'],
      ['priority', { headers: { 'apns-priority': '7' } }, 400, 'BadPriority'],
      ['expiration', { headers: { 'apns-expiration': 'tomorrow' } }, 400, 'BadExpirationDate'],
      ['apns-id', { headers: { 'apns-id': 'not-a-uuid' } }, 400, 'BadMessageId'],
      ['upper-case apns-id', { headers: { 'apns-id': crypto.randomUUID().toUpperCase() } }, 400, 'BadMessageId'],
      ['collapse id', { headers: { 'apns-collapse-id': 'x'.repeat(65) } }, 400, 'BadCollapseId'],
      ['duplicate header', { headers: { 'apns-priority': ['10', '10'] } }, 400, 'DuplicateHeaders'],
      ['empty body', { body: '' }, 400, 'PayloadEmpty'],
      ['extra key', { body: JSON.stringify({ mdm: 'M', aps: {} }) }, 400, 'BadPayload'],
      ['empty magic', { body: JSON.stringify({ mdm: '' }) }, 400, 'BadPayload'],
      ['not JSON', { body: 'mdm=M' }, 400, 'BadPayload'],
      ['too large', { body: JSON.stringify({ mdm: 'M'.repeat(4090) }) }, 413, 'PayloadTooLarge'],
    ];
    for (const [name, opts, status, why] of cases) {
      const a = await send(push, opts);
      expect([a.status, reason(a)], name).toEqual([status, why]);
      expect(a.headers['content-type'], name).toMatch(/^application\/json/);
    }
    // The boundaries that pass: 64 hex characters, a collapse id of 64 bytes, a 4096-byte payload.
    expect((await send(push, { headers: { 'apns-collapse-id': 'x'.repeat(64) } })).status).toBe(200);
    expect((await send(push, { body: JSON.stringify({ mdm: 'M'.repeat(4096 - 10) }) })).status).toBe(200);
  });

  it("requires a client certificate from the configured CA, and one that carries a topic", async () => {
    expect(await refused(send(null))).toBe(true);
    const stranger = await testCa('Not Apple');
    const leaf = await testLeaf(stranger, { CN: 'intruder' });
    expect(await refused(send({ certPem: leaf.cert.pem, keyPem: leaf.keyPem, serial: leaf.cert.serialNumberHex }))).toBe(true);
    const noUid = await testLeaf(await applePushCa(), { CN: 'no topic' });
    const a = await send({ certPem: noUid.cert.pem, keyPem: noUid.keyPem, serial: noUid.cert.serialNumberHex });
    expect([a.status, reason(a)]).toEqual([403, 'BadCertificate']);
  });

  it('answers 403 BadCertificate for a revoked certificate', async () => {
    const other = await pushIdentity();
    sim.revokeCertificate(other.serial);
    const a = await send(other);
    expect([a.status, reason(a)]).toEqual([403, 'BadCertificate']);
    expect((await send(push)).status).toBe(200);
  });

  it('answers 410 Unregistered with the timestamp for a gone token, until it registers again', async () => {
    const token = 'b2'.repeat(32);
    const at = new Date('2026-05-01T10:00:00.000Z');
    sim.unregister(token, at);
    const a = await send(push, { path: `/3/device/${token}` });
    expect(a.status).toBe(410);
    expect(JSON.parse(a.body)).toEqual({ reason: 'Unregistered', timestamp: at.getTime() });
    sim.register(token);
    expect((await send(push, { path: `/3/device/${token}` })).status).toBe(200);
  });

  it('answers DeviceTokenNotForTopic for a token registered to another topic', async () => {
    const token = 'c3'.repeat(32);
    sim.register(token, 'com.apple.mgmt.External.someone-else');
    const a = await send(push, { path: `/3/device/${token}` });
    expect([a.status, reason(a)]).toEqual([400, 'DeviceTokenNotForTopic']);
  });

  it('injects failures: a status N times, for one token, with Retry-After', async () => {
    const token = 'd4'.repeat(32);
    sim.failNext({ status: 429, times: 2, token, retryAfterSeconds: 5 });
    const first = await send(push, { path: `/3/device/${token}` });
    expect([first.status, reason(first), first.headers['retry-after']]).toEqual([429, 'TooManyRequests', '5']);
    // Other tokens aren't affected.
    expect((await send(push)).status).toBe(200);
    expect((await send(push, { path: `/3/device/${token}` })).status).toBe(429);
    expect((await send(push, { path: `/3/device/${token}` })).status).toBe(200);
    sim.failNext({ status: 503 });
    expect(reason(await send(push))).toBe('ServiceUnavailable');
    sim.failNext({ status: 500 });
    expect(reason(await send(push))).toBe('InternalServerError');
  });

  it('wakes a subscribed device, and keeps the last push for an offline one until it expires', async () => {
    const token = 'e5'.repeat(32);
    const got: DeliveredNotification[] = [];
    const stop = sim.subscribe(token, (n) => got.push(n));
    await send(push, { path: `/3/device/${token}`, body: JSON.stringify({ mdm: 'ONE' }) });
    await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual([expect.objectContaining({ token, pushMagic: 'ONE', topic: push.topic })]);
    stop();

    // Offline: only the latest is kept, and delivered on (re)connection.
    const exp = String(Math.floor(clock.now().getTime() / 1000) + 3600);
    await send(push, { path: `/3/device/${token}`, body: JSON.stringify({ mdm: 'TWO' }), headers: { 'apns-expiration': exp } });
    await send(push, { path: `/3/device/${token}`, body: JSON.stringify({ mdm: 'THREE' }), headers: { 'apns-expiration': exp } });
    const later: DeliveredNotification[] = [];
    sim.subscribe(token, (n) => later.push(n))();
    await new Promise((r) => setTimeout(r, 10));
    expect(later.map((n) => n.pushMagic)).toEqual(['THREE']);

    // Expired before the device came back, or apns-expiration 0: nothing is kept.
    const token2 = 'f6'.repeat(32);
    await send(push, { path: `/3/device/${token2}`, headers: { 'apns-expiration': exp } });
    clock.advance(3601_000);
    const none: DeliveredNotification[] = [];
    sim.subscribe(token2, (n) => none.push(n));
    await send(push, { path: `/3/device/${'a7'.repeat(32)}`, headers: { 'apns-expiration': '0' } });
    const none2: DeliveredNotification[] = [];
    sim.subscribe('a7'.repeat(32), (n) => none2.push(n));
    await new Promise((r) => setTimeout(r, 10));
    expect([none, none2]).toEqual([[], []]);
  });
});
