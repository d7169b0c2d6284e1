import crypto from 'node:crypto';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSignedData } from '../../src/pki/signed.js';
import type { AppleDevice } from '../../sim/apple-device/index.js';
import { CHECKIN, COMMAND, plistBody } from '../apple/mdm-support.js';
import { adeWorld, MANAGED_DEVICES, type AdeWorld } from '../helpers/apple-device.js';
import { createTestStore } from '../helpers/store.js';
import { testCa, testLeaf, type TestIdentity } from '../pki/fixtures.js';
import { countingStore, type QueryCounts } from './support.js';

/**
 * A flood of MDM messages from clients that aren't enrolled devices — unsigned, with garbage or
 * random signatures, signed by a certificate of another CA, sent to a tenant that doesn't exist —
 * at ServerURL and CheckInURL over TLS. Every one is refused (403) and writes nothing; all but the
 * unknown tenant (one indexed read) are refused from the headers alone, without a query and before
 * the body is read; and an enrolled device polling meanwhile is served as usual. Latency is
 * printed, not asserted (the bench measures performance).
 */

const PER_CATEGORY = 300;
const CONCURRENCY = 32;

type Category = 'unsigned' | 'garbage' | 'random' | 'otherCa' | 'unknownTenant';
const CATEGORIES: Category[] = ['unsigned', 'garbage', 'random', 'otherCa', 'unknownTenant'];

interface Answer {
  category: Category;
  status: number;
  ms: number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const stats = (ms: number[]) => `p50 ${percentile(ms, 50).toFixed(1)} ms, p99 ${percentile(ms, 99).toFixed(1)} ms`;

describe('a flood of check-ins from clients that are not enrolled devices', () => {
  let w: AdeWorld;
  let counts: QueryCounts;
  let iphone: AppleDevice;
  let agent: https.Agent;
  let stranger: TestIdentity;
  let udid: string;
  let serverUrl: URL;
  let checkInUrl: URL;
  let messages: Record<'checkin' | 'idle', { body: Buffer; signature: string }>;

  beforeAll(async () => {
    const counted = countingStore(await createTestStore());
    counts = counted.counts;
    w = await adeWorld({ store: counted.store });
    const serial = 'FLDXK0N8HG7F';
    await w.addDevices([{ serial, model: 'iPhone 15', device_family: 'iPhone' }]);
    await w.profile({ displayName: 'Flood phones', requiresUserAuthentication: false }, { isDefault: true });
    iphone = await w.device(serial);
    const enrolled = await iphone.enrollAdeFromCloud(w.abm);
    serverUrl = new URL(enrolled.mdm.serverUrl);
    checkInUrl = new URL(enrolled.mdm.checkInUrl ?? enrolled.mdm.serverUrl);
    udid = iphone.enrollmentId!;
    for (let i = 0; i < 3 && (await iphone.poll()).commands.length > 0; i++);
    agent = new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: w.tlsCertPem });
    // A certificate of another CA, naming the enrolled device.
    stranger = await testLeaf(await testCa('Another CA'), { CN: udid });
    // Signed once: the flood measures the server's work, not the attacker's.
    const signedBy = (body: Buffer) => ({ body, signature: createSignedData(body, { certificatePem: stranger.cert.pem, privateKeyPem: stranger.keyPem, detached: true }).toString('base64') });
    messages = {
      checkin: signedBy(plistBody({ MessageType: 'TokenUpdate', UDID: udid, Topic: w.topic, Token: crypto.randomBytes(32), PushMagic: 'EVIL' })),
      idle: signedBy(plistBody({ UDID: udid, Status: 'Idle' })),
    };
  }, 120_000);

  afterAll(async () => {
    agent?.destroy();
    await w?.close();
  });

  function post(url: URL, headers: Record<string, string>, body: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method: 'PUT', agent, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** One request of a category, to ServerURL or CheckInURL. */
  function attack(category: Category, i: number): Promise<Answer> {
    const checkin = i % 2 === 0;
    const { body, signature } = checkin ? messages.checkin : messages.idle;
    let url = checkin ? checkInUrl : serverUrl;
    const headers: Record<string, string> = { 'content-type': checkin ? CHECKIN : COMMAND };
    const signed = () => signature;
    switch (category) {
      case 'unsigned':
        break;
      case 'garbage':
        headers['mdm-signature'] = '%%% not a signature %%%';
        break;
      case 'random':
        headers['mdm-signature'] = crypto.randomBytes(900).toString('base64');
        break;
      case 'otherCa':
        headers['mdm-signature'] = signed();
        break;
      case 'unknownTenant':
        headers['mdm-signature'] = signed();
        url = new URL(url.pathname.replace(w.t.tenantId, 'no-such-tenant-0001'), url);
        break;
    }
    const started = performance.now();
    return post(url, headers, body).then((status) => ({ category, status, ms: performance.now() - started }));
  }

  async function flood(): Promise<Answer[]> {
    const jobs = CATEGORIES.flatMap((c) => Array.from({ length: PER_CATEGORY }, (_, i) => [c, i] as const));
    const answers: Answer[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < jobs.length) {
          const [c, i] = jobs[next++]!;
          answers.push(await attack(c, i));
        }
      }),
    );
    return answers;
  }

  it('refuses every message with 403 and writes nothing; only an unknown tenant costs a read', { timeout: 60_000 }, async () => {
    const before = { ...counts };
    const answers = await flood();
    expect(answers).toHaveLength(CATEGORIES.length * PER_CATEGORY);
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([403]));
    expect(counts.writes - before.writes).toBe(0);
    expect(counts.raw - before.raw).toBe(0);
    // The tenant's CA is cached; a tenant that doesn't exist is one lookup of its CA per request.
    expect(counts.reads - before.reads).toBeLessThanOrEqual(PER_CATEGORY);
    for (const c of CATEGORIES) console.log(`[faults] flood ${c}: ${stats(answers.filter((a) => a.category === c).map((a) => a.ms))}`);
  });

  it('refuses a stranger before reading its body', { timeout: 30_000 }, async () => {
    // 8 MiB announced, 64 KiB sent: the answer must come without the rest.
    for (const signature of [undefined, createSignedData(Buffer.from('x'), { certificatePem: stranger.cert.pem, privateKeyPem: stranger.keyPem, detached: true }).toString('base64')]) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = https.request(serverUrl, {
          method: 'PUT',
          agent: false,
          ca: w.tlsCertPem,
          headers: { 'content-type': COMMAND, 'content-length': String(8 * 1024 * 1024), ...(signature ? { 'mdm-signature': signature } : {}) },
        });
        const timer = setTimeout(() => reject(new Error('no answer: the server waits for the body of an unauthenticated message')), 10_000);
        req.on('response', (res) => {
          clearTimeout(timer);
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        req.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        req.write(crypto.randomBytes(64 * 1024));
      });
      expect(status).toBe(403);
    }
  });

  it('serves the enrolled device while the flood goes on', { timeout: 60_000 }, async () => {
    const quiet: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      await iphone.poll();
      quiet.push(performance.now() - started);
    }
    const device = await w.managedDevice(iphone.serial);
    let done = false;
    const flooding = flood().finally(() => (done = true));
    const busy: number[] = [];
    let renamed = false;
    for (let i = 0; !done || i < 3; i++) {
      if (i === 1) await w.ok({ method: 'POST', url: `${MANAGED_DEVICES}/${device!.id}/setDeviceName`, payload: { deviceName: 'Flooded-iPhone' } }, 204);
      const started = performance.now();
      const polled = await iphone.poll();
      busy.push(performance.now() - started);
      if (polled.commands.some((c) => c.requestType === 'Settings' && c.status === 'Acknowledged')) renamed = true;
    }
    const answers = await flooding;
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([403]));
    expect(renamed).toBe(true);
    expect(iphone.deviceName).toBe('Flooded-iPhone');
    expect(await w.managedDevice(iphone.serial)).toMatchObject({ deviceName: 'Flooded-iPhone' });
    console.log(`[faults] enrolled device poll: quiet ${stats(quiet)}; during the flood ${stats(busy)} over ${busy.length} polls; flood ${stats(answers.map((a) => a.ms))}`);
  });
});
