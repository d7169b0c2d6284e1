import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceError, type AppleDevice } from '../../sim/apple-device/index.js';
import { MANAGED_DEVICES, USER_PASSWORD } from '../helpers/apple-device.js';
import { testDialect } from '../helpers/store.js';
import { startCluster, type Cluster, type NodeName } from './cluster.js';

/**
 * Two `openenroll serve` processes on one PostgreSQL schema, a load balancer that may send any
 * request to either: admin objects, a device's whole ADE enrollment (web sign-in, profile, SCEP,
 * check-ins, commands), pushes and sign-in lockouts behave as on one node.
 */
describe.runIf(testDialect() === 'postgres')('several nodes: any node serves any request', () => {
  let c: Cluster;
  let tokenId: string;
  const ENROLLING = 'F2LXK0N8HG7F';
  const LOCKED = 'G6TXK2N8Q1GH';
  const upn = 'alex.wilber@contoso.com';
  const lockedUpn = 'megan.bowen@contoso.com';
  let iphone: AppleDevice;
  let managedDeviceId: string;

  beforeAll(async () => {
    c = await startCluster();
    ({ tokenId } = await c.connectAde([ENROLLING, LOCKED]));
    await c.defaultProfile(tokenId, [ENROLLING, LOCKED]);
    for (const [node, u] of [['A', upn], ['B', lockedUpn]] as const) {
      const nick = u.split('@')[0]!;
      await c.ok(node, 'POST', '/v1.0/users', { accountEnabled: true, displayName: nick, mailNickname: nick, userPrincipalName: u, passwordProfile: { password: USER_PASSWORD, forceChangePasswordNextSignIn: false } }, 201);
    }
  }, 90_000);
  afterAll(async () => c?.close());

  it('an admin object created on A is read, changed and deleted through B, and A sees every change', async () => {
    const TAGS = '/beta/deviceManagement/roleScopeTags';
    const tag = await c.ok('A', 'POST', TAGS, { displayName: 'Made on A', description: 'one' }, 201);
    expect(await c.ok('B', 'GET', `${TAGS}/${tag.id}`)).toMatchObject({ id: tag.id, displayName: 'Made on A', description: 'one' });
    await c.ok('B', 'PATCH', `${TAGS}/${tag.id}`, { description: 'changed on B' });
    expect(await c.ok('A', 'GET', `${TAGS}/${tag.id}`)).toMatchObject({ description: 'changed on B' });
    await c.ok('B', 'DELETE', `${TAGS}/${tag.id}`, undefined, 204);
    expect((await c.api('A', 'GET', `${TAGS}/${tag.id}`)).status).toBe(404);
  });

  it('a device enrolls with the web sign-in while every request goes to the other node than the one before', async () => {
    c.route('alternate');
    const from = c.routed.length;
    iphone = await c.device(ENROLLING);
    const enrolled = await iphone.enrollAdeFromCloud(c.abm, { credentials: { username: upn, password: USER_PASSWORD } });
    expect(enrolled.profile.verified).toBe(true);
    // The first commands (DeviceInformation …): each fetched on one node, answered on the other.
    for (let i = 0; i < 4; i++) if ((await iphone.poll()).commands.length === 0) break;
    const steps = c.routed.slice(from);
    for (let i = 1; i < steps.length; i++) expect(steps[i]!.node, `${steps[i]!.method} ${steps[i]!.path}`).not.toBe(steps[i - 1]!.node);
    expect(steps.every((s) => s.status < 400 || (s.status === 401 && s.method === 'POST'))).toBe(true);
    const nodesFor = (re: RegExp) => new Set(steps.filter((s) => re.test(s.path)).map((s) => s.node));
    // The sign-in page's session (cookie, CSRF token) was started on one node and continued on the other.
    expect(nodesFor(/\/web/)).toEqual(new Set<NodeName>(['A', 'B']));
    expect(nodesFor(/^\/scep\//)).toEqual(new Set<NodeName>(['A', 'B']));
    expect(nodesFor(/\/checkin$/)).toEqual(new Set<NodeName>(['A', 'B']));
    expect(nodesFor(/\/server$/)).toEqual(new Set<NodeName>(['A', 'B']));

    const md = await c.ok('B', 'GET', `${MANAGED_DEVICES}?$filter=serialNumber eq '${ENROLLING}'`);
    expect(md.value).toEqual([expect.objectContaining({ serialNumber: ENROLLING, userPrincipalName: upn, managedDeviceOwnerType: 'company' })]);
    managedDeviceId = md.value[0].id as string;
    const commands = await c.ok('A', 'GET', `${MANAGED_DEVICES}/${managedDeviceId}/appleMdmCommands`);
    expect(commands.value.length).toBeGreaterThan(0);
    expect(commands.value.every((cmd: { status: string }) => cmd.status === 'Acknowledged')).toBe(true);
  });

  it('commands queued on both nodes at once are pushed exactly once each, and answered through B', async () => {
    expect(managedDeviceId, 'the enrollment test ran').toBeTruthy();
    const token = iphone.pushTokenHex;
    const before = c.apns.delivered(token).length;
    // The device is asleep (not polling), so every command stays queued and wants its push.
    const requests = Array.from({ length: 8 }, (_, i) =>
      c.ok(i % 2 === 0 ? 'A' : 'B', 'POST', `${MANAGED_DEVICES}/${managedDeviceId}/appleMdmCommands`, { requestType: i % 4 < 2 ? 'DeviceInformation' : 'ProfileList', ...(i % 4 < 2 ? { payload: { Queries: ['DeviceName'] } } : {}) }, 201),
    );
    const uuids = (await Promise.all(requests)).map((r: { commandUuid: string }) => r.commandUuid);
    const queue = () => c.store.db.selectFrom('mdm_command_queue').select(['command_uuid', 'push_sent_at', 'status']).where('command_uuid', 'in', uuids).execute();
    const pushJobIdle = async () => {
      const job = await c.store.db.selectFrom('jobs').select(['status']).where('kind', '=', 'apple.mdm.push').executeTakeFirst();
      return job?.status !== 'running' && job?.status !== 'pending';
    };
    await c.until('every command to be pushed and the push job to rest', async () => (await queue()).every((r) => r.push_sent_at !== null) && (await pushJobIdle()));
    // Both nodes poll every 200 ms: give a duplicate every chance to show.
    await new Promise((r) => setTimeout(r, 1000));
    const pushes = c.apns.delivered(token).slice(before);
    expect(pushes.map((p) => p.pushMagic)).toEqual(uuids.map(() => iphone.pushMagic));

    c.route('B');
    const from = c.routed.length;
    const answered: string[] = [];
    for (let i = 0; i < 4 && answered.length < uuids.length; i++) answered.push(...(await iphone.poll()).commands.map((cmd) => cmd.commandUuid));
    expect(new Set(answered)).toEqual(new Set(uuids));
    expect(new Set(c.routed.slice(from).map((r) => r.node))).toEqual(new Set(['B']));
    expect((await queue()).every((r) => r.status === 'Acknowledged')).toBe(true);
    c.route('alternate');
  });

  it('ten failed sign-ins spread over both nodes lock the user name on every node', async () => {
    const device = await c.device(LOCKED);
    const signIn = async (password: string) => {
      const err = await device.enrollAdeFromCloud(c.abm, { credentials: { username: lockedUpn, password } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      return err;
    };
    // Five failures on each node: per node, neither reached the limit of ten.
    for (const node of ['A', 'B'] as const) {
      c.route(node);
      for (let i = 0; i < 5; i++) {
        const err = await signIn(`Wr0ng-password-${i}`);
        expect(err).toBeInstanceOf(DeviceError);
        expect((err as DeviceError).code).toBe('authenticationRequired');
      }
    }
    // The right password is refused now, on either node: 429 with the lockout message.
    for (const node of ['A', 'B'] as const) {
      c.route(node);
      const err = await signIn(USER_PASSWORD);
      expect(err, `right password on ${node} after ten failures`).toBeInstanceOf(DeviceError);
      expect((err as DeviceError).status).toBe(429);
      expect((err as DeviceError).message).toContain('Too many failed sign-in attempts');
    }
    c.route('alternate');
    // The lock is a row in the shared store.
    const locks = await c.store.db.selectFrom('enrollment_signin_throttle').select('locked_until').where('locked_until', '>', new Date().toISOString()).execute();
    expect(locks.length).toBeGreaterThan(0);
  });
});
