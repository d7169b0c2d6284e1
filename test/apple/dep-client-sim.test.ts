import { afterEach, describe, expect, it } from 'vitest';
import { DepApiError, type DepDevice, type DepOAuthTokens } from '../../src/apple/ade/dep-api.js';
import { DepClient, type DepClientOptions } from '../../src/apple/ade/dep-client.js';
import { classifyDepError, decideSyncMode, depPageLimit, mergeSyncOps } from '../../src/apple/ade/sync-policy.js';
import { decryptServerToken, startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { tokenRecipient } from '../sim/abm-helpers.js';

/** The client against the ABM simulator (sim/apple-dep), end to end. */

let sim: AbmSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function connect(simOpts: Parameters<typeof startAbmSimulator>[0] = {}, clientOpts: Partial<DepClientOptions> = {}) {
  sim = await startAbmSimulator(simOpts);
  const recipient = tokenRecipient();
  const { serverUuid } = sim.createMdmServer('OpenEnroll');
  sim.uploadPublicKey(serverUuid, recipient.certPem);
  const tokens: DepOAuthTokens = decryptServerToken(sim.downloadServerToken(serverUuid), recipient.keyPem);
  const sleeps: number[] = [];
  const client = new DepClient({
    tokens,
    baseUrl: sim.url,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...clientOpts,
  });
  return { sim, serverUuid, tokens, client, sleeps };
}

async function fetchAll(client: DepClient, limit: number): Promise<{ devices: DepDevice[]; cursor: string; pages: number }> {
  const devices: DepDevice[] = [];
  let cursor: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await client.fetchDevices(cursor, limit);
    pages++;
    devices.push(...page.devices);
    cursor = page.cursor;
    if (!page.more_to_follow) return { devices, cursor, pages };
  }
}

async function error(p: Promise<unknown>): Promise<DepApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DepApiError) return err;
    throw err;
  }
  throw new Error('expected a DepApiError');
}

describe('DepClient against the ABM simulator', () => {
  it('session, account, paged fetch, sync, profile define/get/assign/remove, device details', async () => {
    const { sim, serverUuid, client } = await connect();
    const serials = sim.generateDevices(2500, { prefix: 'OE' });
    sim.assignDevicesToServer(serverUuid, { serials });

    const account = await client.account();
    expect(account.server_uuid).toBe(serverUuid);
    const limit = depPageLimit(account, '/server/devices');
    expect(limit).toBe(1000);

    // First sync: a fresh token fetches everything, page by page.
    const plan = decideSyncMode({ cursor: null, syncPhase: 'fetch', syncStatus: 'none', nextSyncFull: true, lastManualSyncAt: null, lastSyncStartedAt: null, lastFullSyncAt: null }, new Date());
    expect(plan).toMatchObject({ mode: 'full', reason: 'firstSync', endpoint: 'fetch' });
    const fetched = await fetchAll(client, limit);
    expect(fetched.pages).toBe(3);
    expect(new Set(fetched.devices.map((d) => d.serial_number))).toEqual(new Set(serials));
    expect(fetched.devices[0]).toMatchObject({ os: expect.any(String), device_family: expect.any(String) });

    // Fetching past the end: EXHAUSTED_CURSOR, which means carry on with sync.
    const exhausted = await error(client.fetchDevices(fetched.cursor, limit));
    expect(exhausted.code).toBe('EXHAUSTED_CURSOR');
    expect(classifyDepError(exhausted)).toBe('switchToSync');

    // Nothing changed yet.
    const quiet = await client.syncDevices(fetched.cursor, limit);
    expect(quiet.devices).toEqual([]);

    // Changes at Apple: a new device, and one released from ABM.
    const [added] = sim.generateDevices(1, { prefix: 'NEW' });
    sim.assignDevicesToServer(serverUuid, { serials: [added!] });
    sim.releaseDevices([serials[0]!]);
    const delta = await client.syncDevices(quiet.cursor, limit);
    const ops = Object.fromEntries(mergeSyncOps(delta.devices).map((d) => [d.serial_number, d.op_type]));
    expect(ops[added!]).toBe('added');
    expect(ops[serials[0]!]).toBe('deleted');

    // Profiles.
    const defined = await client.defineProfile({
      profile_name: 'Corporate iPads',
      url: 'https://mdm.example.com/enroll',
      configuration_web_url: 'https://mdm.example.com/enroll',
      is_mdm_removable: false,
      is_supervised: true,
      org_magic: 'openenroll',
      skip_setup_items: ['Location', 'Siri'],
    });
    expect(defined.profile_uuid).toBeTruthy();
    const got = await client.getProfile(defined.profile_uuid);
    expect(got).toMatchObject({ profile_name: 'Corporate iPads', is_mdm_removable: false });

    const targets = serials.slice(1, 1201);
    const assigned = await client.assignProfile(defined.profile_uuid, [...targets, 'NOT-OURS-1']);
    expect(Object.values(assigned.devices).filter((s) => s === 'SUCCESS')).toHaveLength(1200);
    expect(assigned.devices['NOT-OURS-1']).toBe('NOT_ACCESSIBLE');
    expect(sim.device(targets[0]!)?.profile_uuid).toBe(defined.profile_uuid);

    const details = await client.deviceDetails([targets[0]!, 'NOT-OURS-1']);
    expect(details[targets[0]!]).toMatchObject({ profile_uuid: defined.profile_uuid, response_status: 'SUCCESS' });
    expect(details['NOT-OURS-1']?.response_status).toBe('NOT_ACCESSIBLE');

    const removed = await client.removeProfile([targets[0]!]);
    expect(removed[targets[0]!]).toBe('SUCCESS');

    // One session did all of it.
    expect(sim.requests.filter((r) => r.path === '/session')).toHaveLength(1);
  });

  it('an expired session is replaced transparently', async () => {
    const { sim, client } = await connect();
    await client.account();
    sim.expireSessions();
    await client.account();
    expect(sim.requests.filter((r) => r.path === '/session')).toHaveLength(2);
  });

  it('a token replaced by a newer download in ABM is rejected at /session and needs an admin, without retries', async () => {
    const { sim, serverUuid, client, sleeps } = await connect();
    await client.account();
    sim.uploadPublicKey(serverUuid, tokenRecipient().certPem);
    sim.downloadServerToken(serverUuid);
    sim.expireSessions();
    const err = await error(client.account());
    expect(err).toMatchObject({ status: 401, code: 'token_rejected', needsAdmin: true });
    expect(classifyDepError(err)).toBe('needsAdmin');
    expect(sleeps).toEqual([]);
    expect(sim.requests.filter((r) => r.path === '/session')).toHaveLength(2);
  });

  it('unsigned terms are a 403 T_C_NOT_SIGNED that needs an admin', async () => {
    const { sim, client } = await connect();
    sim.setTermsSigned(false);
    const err = await error(client.account());
    expect(err).toMatchObject({ status: 403, code: 'T_C_NOT_SIGNED', needsAdmin: true });
    expect(classifyDepError(err)).toBe('needsAdmin');
  });

  it('expired and invalid cursors (quoted, as depsim sends them) lead to a full fetch', async () => {
    const { sim, serverUuid, client } = await connect({ quotedErrors: true });
    sim.assignDevicesToServer(serverUuid, { serials: sim.generateDevices(5) });
    const { cursor } = await fetchAll(client, 100);
    const invalid = await error(client.syncDevices('bogus-cursor'));
    expect(invalid.code).toBe('INVALID_CURSOR');
    sim.expireCursors();
    const expired = await error(client.syncDevices(cursor));
    expect(expired.code).toBe('EXPIRED_CURSOR');
    expect(classifyDepError(expired)).toBe('resetCursor');
  });

  it('protocol version 10: a throttled assignment says THROTTLED with retry_after_seconds', async () => {
    const { sim, serverUuid, client } = await connect();
    const serials = sim.generateDevices(3);
    sim.assignDevicesToServer(serverUuid, { serials });
    const { profile_uuid } = await client.defineProfile({ profile_name: 'P', url: 'https://mdm.example.com/enroll', is_mdm_removable: true, org_magic: 'm' });
    sim.setAssignmentOutcome([serials[0]!], 'THROTTLED', 120);
    const r = await client.assignProfile(profile_uuid, serials);
    expect(r.devices).toEqual({ [serials[0]!]: 'THROTTLED', [serials[1]!]: 'SUCCESS', [serials[2]!]: 'SUCCESS' });
    expect(r.retry_after_seconds).toBe(120);
  });

  it('a 429 with Retry-After is waited out and retried', async () => {
    const { sim, client, sleeps } = await connect({}, { random: () => 0 });
    sim.injectFault({ path: '/account', status: 429, body: 'TOO_MANY_REQUESTS', retryAfter: 3 });
    await client.account();
    expect(sleeps).toEqual([3000]);
  });

  it('our User-Agent is one the simulator (like Apple) accepts, and a library default is not', async () => {
    const { client, tokens } = await connect();
    await client.account();
    const bad = new DepClient({ tokens, baseUrl: sim!.url, userAgent: 'nanodep-godep/0' });
    expect(await error(bad.account())).toMatchObject({ status: 400, code: 'USER_AGENT_INVALID' });
  });
});
