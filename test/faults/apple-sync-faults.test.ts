import { afterEach, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/auth/principal.js';
import { DEFAULT_DEP_RETRY_POLICY } from '../../src/apple/ade/dep-client.js';
import { TOKENS } from '../helpers/apple.js';
import { syncHarness, type SyncHarness } from '../apple/ade-sync-support.js';

/**
 * Apple's device assignment service (the ABM simulator) failing during a sync: throttling (429),
 * server errors (500), answers slower than the client waits, and a peer that never answers. The
 * client retries a bounded number of times (counted at the simulator), waits as long as
 * Retry-After says (measured at the simulator, as a lower bound only), cuts a hanging request off
 * at its timeout (a slow answer retried: test/apple/dep-client.test.ts), and the admin API shows on the token why the sync failed; once Apple is well
 * again, a sync clears it. Kill and resume mid-sync: test/apple/ade-sync-kill.test.ts.
 */

const ATTEMPTS = DEFAULT_DEP_RETRY_POLICY.maxRetries + 1;

let h: SyncHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const fetches = (hh: SyncHarness) => hh.sim.requests.filter((r) => r.path === '/server/devices');
const tokenView = async (hh: SyncHarness) => (await hh.ade.ok({ method: 'GET', url: `${TOKENS}/${hh.tokenId}` })) as Record<string, unknown>;

/** Apple recovers; an admin syncs; the token is clean again. */
async function recovers(hh: SyncHarness, devices: number) {
  hh.sim.clearFaults();
  await hh.sync.scheduler.requestManualSync(systemActor(hh.t.tenantId, 'faults'), hh.tokenId);
  await hh.drain();
  expect(await tokenView(hh)).toMatchObject({ syncStatus: 'succeeded', lastSyncErrorCode: 0, lastSyncErrorMessage: null, syncedDeviceCount: devices });
}

describe('Apple DEP faults during a sync', () => {
  it('429: Retry-After is waited out between attempts, then the sync succeeds', { timeout: 20_000 }, async () => {
    h = await syncHarness({ realTimeSim: true });
    h.sim.generateDevices(4, { serverUuid: h.serverUuid });
    h.sim.injectFault({ path: '/server/devices', status: 429, retryAfter: 1, times: 2 });
    await h.drain();
    const seen = fetches(h);
    expect(seen.map((r) => r.status)).toEqual([429, 429, 200]);
    // The client's own backoff here is 10 ms: only Retry-After explains a second between attempts.
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.receivedMs - seen[i - 1]!.answeredMs!).toBeGreaterThanOrEqual(990);
    expect(await tokenView(h)).toMatchObject({ syncStatus: 'succeeded', syncedDeviceCount: 4 });
  });

  it('429 without end: a bounded number of attempts, then the token says Apple throttled it', { timeout: 20_000 }, async () => {
    h = await syncHarness({ realTimeSim: true });
    h.sim.generateDevices(4, { serverUuid: h.serverUuid });
    h.sim.injectFault({ path: '/server/devices', status: 429, retryAfter: 0, times: Infinity });
    await h.drain();
    expect(fetches(h).map((r) => r.status)).toEqual(Array(ATTEMPTS).fill(429));
    expect(await tokenView(h)).toMatchObject({ syncStatus: 'failed', lastSyncErrorCode: 429, lastSyncErrorMessage: expect.stringMatching(/HTTP 429/) });
    await recovers(h, 4);
  });

  it('500: a bounded number of attempts, the error on the token, and no devices half-stored', { timeout: 20_000 }, async () => {
    h = await syncHarness({ realTimeSim: true });
    h.sim.generateDevices(4, { serverUuid: h.serverUuid });
    h.sim.injectFault({ path: '/server/devices', status: 500, times: Infinity });
    await h.drain();
    expect(fetches(h).map((r) => r.status)).toEqual(Array(ATTEMPTS).fill(500));
    expect(await tokenView(h)).toMatchObject({ syncStatus: 'failed', lastSyncErrorCode: 500, lastSyncErrorMessage: expect.stringMatching(/HTTP 500/) });
    expect((await h.devices()).size).toBe(0);
    await recovers(h, 4);
  });

  it('a hanging peer is cut off at the timeout, a bounded number of times; the token says so', { timeout: 20_000 }, async () => {
    h = await syncHarness({ realTimeSim: true, depRequestTimeoutMs: 200 });
    h.sim.generateDevices(4, { serverUuid: h.serverUuid });
    h.sim.injectFault({ path: '/server/devices', hang: true, times: Infinity });
    // Without the client's timeout this never returns (the test's own timeout fails it).
    await h.drain();
    expect(fetches(h)).toHaveLength(ATTEMPTS);
    expect(await tokenView(h)).toMatchObject({ syncStatus: 'failed', lastSyncErrorMessage: expect.stringMatching(/no answer within 200 ms/) });
    await recovers(h, 4);
  });
});
