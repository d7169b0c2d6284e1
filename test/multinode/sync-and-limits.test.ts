import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADE_SYNC_JOB, adeSyncJobKey } from '../../src/apple/ade/sync/engine.js';
import { JobScheduler } from '../../src/jobs/scheduler.js';
import { MINUTE } from '../../src/shared/time.js';
import type { AbmRequestRecord } from '../../sim/apple-dep/index.js';
import { TOKENS } from '../helpers/apple-device.js';
import { testDialect } from '../helpers/store.js';
import { startCluster, type Cluster, type NodeName } from './cluster.js';

/**
 * Two `openenroll serve` processes on one PostgreSQL schema: a token's sync never runs on both at
 * once, and the limits an admin meets on one node (the 15-minute manual sync, the per-credential
 * API rate limit) are the same limits across nodes.
 */
const RATE_LIMIT_MAX = 40;
const SYNC_PATHS = new Set(['/server/devices', '/devices/sync']);

describe.runIf(testDialect() === 'postgres')('several nodes: one sync at a time, limits shared', () => {
  let c: Cluster;
  let tokenId: string;
  let serverUuid: string;
  /** Its own credential, so the rate-limit budget of the other tests isn't touched. */
  let syncKey: string;

  beforeAll(async () => {
    c = await startCluster({ env: { OPENENROLL_RATE_LIMIT_MAX: String(RATE_LIMIT_MAX), OPENENROLL_RATE_LIMIT_WINDOW_MS: '60000' } });
    ({ tokenId, serverUuid } = await c.connectAde(['C02ZK3N8MD6T', 'DMPXK1N8Q1GC', 'F4GXK0N8HG7A']));
    syncKey = await c.createKey();
    // Apple is slow: each page takes 300 ms, so a second run of the token's sync would overlap the first.
    for (const path of SYNC_PATHS) c.abm.injectFault({ path, delayMs: 300, times: Infinity });
  }, 90_000);
  afterAll(async () => c?.close());

  const manualSync = (node: NodeName) => c.api(node, 'POST', `${TOKENS}/${tokenId}/syncWithAppleDeviceEnrollmentProgram`, undefined, syncKey);
  const token = () => c.store.db.selectFrom('dep_tokens').selectAll().where('id', '=', tokenId).executeTakeFirstOrThrow();
  /** The token's sync job is waiting for its next period and nobody holds it. */
  const syncAtRest = async () => {
    const job = await c.store.db.selectFrom('jobs').selectAll().where('dedupe_key', '=', adeSyncJobKey(tokenId)).executeTakeFirstOrThrow();
    return job.status === 'pending' && job.lease_owner === null && Date.parse(job.run_at) > Date.now() + MINUTE && (await token()).sync_status !== 'running';
  };
  /** As if the 15-minute window had passed since the last manual sync. */
  const windowPassed = () =>
    c.store.db
      .updateTable('dep_tokens')
      .set({ last_manual_sync_at: new Date(Date.now() - 16 * MINUTE).toISOString() })
      .where('id', '=', tokenId)
      .execute();
  const syncCalls = (): AbmRequestRecord[] => c.abm.requests.filter((r) => r.server === serverUuid && SYNC_PATHS.has(r.path)).sort((a, b) => a.receivedMs - b.receivedMs);

  it('a manual sync on B right after one on A is refused (429), as on one node', async () => {
    await c.until('the upload sync to finish', syncAtRest);
    const first = await manualSync('A');
    expect(first.status, first.text).toBe(204);
    const second = await manualSync('B');
    expect(second.status, second.text).toBe(429);
    expect(second.json.error.code).toBe('TooManyRequests');
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
    await c.until('the manual sync to finish', syncAtRest);
    // Finished, but still inside A's 15 minutes.
    const third = await manualSync('B');
    expect(third.status, third.text).toBe(429);
    expect(third.json.error.message).toContain('at most once every 15 minutes');
  });

  it('of two manual syncs sent to A and B at the same moment, exactly one is accepted', async () => {
    for (let round = 0; round < 8; round++) {
      await c.until('the previous sync to finish', syncAtRest);
      await windowPassed();
      const answers = await Promise.all([manualSync('A'), manualSync('B')]);
      expect(
        answers.map((a) => a.status).sort(),
        `round ${round}: ${answers.map((a) => a.text).join(' | ')}`,
      ).toEqual([204, 429]);
    }
    await c.until('the last sync to finish', syncAtRest);
  });

  it("a token's sync never runs on two nodes at once, however often it is asked for", async () => {
    await windowPassed();
    const before = syncCalls().length;
    expect((await manualSync('A')).status).toBe(204);
    const enqueuer = new JobScheduler(c.store);
    const started = Date.now();
    // While it runs: the periodic job comes due again and again (as the schedule or a token upload
    // would make it), and admins keep asking on B (refused while it runs).
    while (Date.now() - started < 1500) {
      await enqueuer.enqueue(c.store.db, { tenantId: c.tenantId, kind: ADE_SYNC_JOB, dedupeKey: adeSyncJobKey(tokenId), runAt: new Date() });
      expect((await manualSync('B')).status).toBe(429);
      await new Promise((r) => setTimeout(r, 100));
    }
    await c.until('every requested sync to finish', syncAtRest, 30_000);

    const calls = syncCalls();
    // The runs asked for here (and in the tests before) did happen: at least one after the manual one.
    expect(calls.length - before).toBeGreaterThanOrEqual(2);
    expect(calls.every((r) => r.answeredMs !== null && r.status === 200)).toBe(true);
    for (let i = 1; i < calls.length; i++) {
      expect(calls[i]!.receivedMs, `${calls[i]!.path} began before ${calls[i - 1]!.path} was answered`).toBeGreaterThanOrEqual(calls[i - 1]!.answeredMs!);
    }
  });

  it('the per-credential API rate limit is one budget across both nodes', async () => {
    const key = await c.createKey();
    const TAGS = '/beta/deviceManagement/roleScopeTags';
    // 25 requests to each node at once: the store counts all 50 against the one credential.
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => c.api(i % 2 === 0 ? 'A' : 'B', 'GET', TAGS, undefined, key)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(RATE_LIMIT_MAX);
    expect(statuses.filter((s) => s === 429)).toHaveLength(50 - RATE_LIMIT_MAX);
    for (const node of ['A', 'B'] as const) {
      const res = await c.api(node, 'GET', TAGS, undefined, key);
      expect(res.status, `${node} after the budget is spent`).toBe(429);
      expect(res.json.error.code).toBe('TooManyRequests');
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    // Another credential has its own budget, on either node.
    const other = await c.createKey();
    for (const node of ['A', 'B'] as const) expect((await c.api(node, 'GET', TAGS, undefined, other)).status).toBe(200);
  });
});
