import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { connectServer, Dep, http, UA } from './abm-helpers.js';

describe('ABM simulator: injected faults', () => {
  let sim: AbmSimulator;
  let dep: Dep;

  beforeEach(async () => {
    sim = await startAbmSimulator();
    const s = connectServer(sim, 'OpenEnroll');
    sim.generateDevices(3, { serverUuid: s.serverUuid });
    dep = new Dep(sim, s.creds);
    await dep.login();
  });
  afterEach(() => sim.close());

  it('answers 429 with Retry-After in seconds for as many times as asked, then normally', async () => {
    sim.injectFault({ method: 'POST', path: '/server/devices', status: 429, retryAfter: 7, times: 2 });
    for (let i = 0; i < 2; i++) {
      const r = await dep.call('POST', '/server/devices', {});
      expect([r.status, r.text, r.headers.get('retry-after')]).toEqual([429, 'TOO_MANY_REQUESTS', '7']);
    }
    expect((await dep.call('POST', '/server/devices', {})).status).toBe(200);
  });

  it('sends Retry-After as an HTTP-date and a custom body', async () => {
    const date = new Date(Date.now() + 120_000).toUTCString();
    sim.injectFault({ path: '/session', status: 429, retryAfter: date, body: 'TOO_MANY_REQUESTS: slow down' });
    const r = await dep.signedSession();
    expect([r.status, r.text, r.headers.get('retry-after')]).toEqual([429, 'TOO_MANY_REQUESTS: slow down', date]);
    expect((await dep.signedSession()).status).toBe(200);
  });

  it('answers 503 and 500, matching the method when one is given and any path with *', async () => {
    sim.injectFault({ method: 'GET', path: '/account', status: 503 });
    expect((await dep.call('POST', '/server/devices', {})).status).toBe(200);
    expect(await dep.call('GET', '/account')).toMatchObject({ status: 503, text: 'SERVICE_UNAVAILABLE' });
    sim.injectFault({ path: '/profile*', status: 500, times: Infinity });
    expect((await dep.call('GET', '/profile?profile_uuid=x')).status).toBe(500);
    expect((await dep.call('DELETE', '/profile/devices', { devices: ['x'] })).status).toBe(500);
    expect((await dep.call('GET', '/profile?profile_uuid=x')).status).toBe(500);
    sim.clearFaults();
    expect((await dep.call('GET', '/profile?profile_uuid=x')).status).toBe(404);
    expect(sim.requests.filter((r) => r.status >= 500).map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'GET /account 503', 'GET /profile 500', 'DELETE /profile/devices 500', 'GET /profile 500',
    ]);
  });

  it('delays an answer, then answers normally', async () => {
    sim.injectFault({ path: '/account', delayMs: 150 });
    const t0 = performance.now();
    const r = await dep.call('GET', '/account');
    expect(r.status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('hangs: the client times out; close() still finishes with a request hanging', async () => {
    sim.injectFault({ path: '/server/devices', hang: true, times: 2 });
    await expect(
      fetch(`${sim.url}/server/devices`, {
        method: 'POST',
        headers: { 'User-Agent': UA, 'X-ADM-Auth-Session': dep.session!, 'Content-Type': 'application/json' },
        body: '{}',
        signal: AbortSignal.timeout(200),
      }),
    ).rejects.toThrow();
    const pending = fetch(`${sim.url}/server/devices`, { method: 'POST', headers: { 'User-Agent': UA }, body: '{}' });
    const settled = pending.then(
      () => 'answered',
      () => 'failed',
    );
    await new Promise((r) => setTimeout(r, 50));
    await sim.close();
    expect(await settled).toBe('failed');
    expect(sim.requests.filter((r) => r.path === '/server/devices').map((r) => r.status)).toEqual([0, 0]);
  });

  it('refuses a fault that does nothing', () => {
    expect(() => sim.injectFault({ path: '/account' })).toThrow(/status, delayMs or hang/);
    expect(() => sim.injectFault({ path: 'account', status: 500 })).toThrow(/start with \//);
  });

  it('works over the control surface too', async () => {
    const add = await http(`${sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify({ path: '/account', status: 429, retryAfter: 3, times: null }) });
    expect(add.status).toBe(204);
    expect((await dep.call('GET', '/account')).status).toBe(429);
    expect((await dep.call('GET', '/account')).status).toBe(429);
    expect((await http(`${sim.url}/_sim/faults`, { method: 'DELETE' })).status).toBe(204);
    expect((await dep.call('GET', '/account')).status).toBe(200);
    const bad = await http(`${sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify({ path: '/account', status: 99 }) });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/status/);
  });
});
