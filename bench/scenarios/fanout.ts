import { BULK_COMMAND_MAX_DEVICES } from '../../src/apple/mdm/admin.js';
import type { AppleDevice, PolledCommand } from '../../sim/apple-device/index.js';
import type { Fleet } from '../lib/fleet.js';
import type { ScenarioResult } from '../lib/report.js';
import { runPool, sleep } from '../lib/stats.js';
import type { Deployment, Peers } from '../lib/world.js';

const MANAGED_DEVICES = '/beta/deviceManagement/managedDevices';

/** managedDevice id by serial, through the admin API's paging. */
async function managedDeviceIds(d: Deployment): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  let url: string | undefined = `${MANAGED_DEVICES}?$select=id,serialNumber&$top=999`;
  while (url) {
    const page: Record<string, unknown> = await d.admin.call('GET', url);
    for (const row of page.value as Array<{ id: string; serialNumber: string }>) ids.set(row.serialNumber, row.id);
    url = page['@odata.nextLink'] as string | undefined;
  }
  return ids;
}

/**
 * Resolves when every device has acknowledged its command (the UUID is known once the admin call
 * answered, which may be after the device already polled); returns the time of the last answer.
 */
async function allAcknowledged(devices: readonly AppleDevice[], uuids: Map<AppleDevice, string>, timeoutMs: number): Promise<number> {
  const pending = new Set(devices);
  let last = 0;
  const deadline = performance.now() + timeoutMs;
  while (pending.size > 0) {
    for (const device of pending) {
      const uuid = uuids.get(device);
      const done = uuid ? device.commandLog.findLast((c) => c.commandUuid === uuid && c.status === 'Acknowledged') : undefined;
      if (!done) continue;
      last = Math.max(last, done.at.getTime());
      pending.delete(device);
    }
    if (performance.now() > deadline) throw new Error(`${pending.size} of ${devices.length} devices did not acknowledge within ${timeoutMs} ms`);
    await sleep(20);
  }
  return last;
}

/**
 * The push-triggered poll that carried the fan-out's command, once it has finished (the server has
 * answered the acknowledgement); then the device hangs up, as a phone does. Hanging up as soon as
 * the log says Acknowledged would cut that last exchange short.
 */
async function commandPoll(device: AppleDevice, requestType: string, timeoutMs: number): Promise<PolledCommand> {
  for (;;) {
    const r = await device.waitForPoll({ timeoutMs });
    const command = r.commands.find((c) => c.requestType === requestType);
    if (command) {
      device.dropConnections();
      return command;
    }
  }
}

/**
 * (d) Command fan-out: an admin queues one DeviceInformation command for every enrolled device of the
 * fleet (queueAppleMdmCommand: one command UUID, one admin call per 10,000 devices); the server
 * pushes each device through APNs (the simulator), each device wakes, polls, answers. Timed from
 * the admin call to the last acknowledgement.
 */
export async function fanout(d: Deployment, peers: Peers, fleet: Fleet, opts: { adminConcurrency: number; timeoutMs: number; verifyServerState?: boolean }): Promise<ScenarioResult> {
  const devices = fleet.devices.filter((x) => x.enrolled);
  const ids = await managedDeviceIds(d);
  // One managed device per enrolled device: fewer means the server merged devices it should keep apart.
  const missing = devices.filter((x) => !ids.has(x.serial));
  if (missing.length > 0) {
    throw new Error(`${missing.length} of ${devices.length} enrolled devices have no managedDevice (first: ${missing[0]!.serial}); the listing holds ${ids.size}`);
  }
  const uuids = new Map<AppleDevice, string>();
  for (const device of devices) device.listenForPushes(peers.apns);
  const pushesBefore = peers.apns.delivered().length;
  const window = d.server.meter.window();
  const cpu = process.cpuUsage();
  const startedAtWallClock = Date.now();
  const started = performance.now();
  const acks = allAcknowledged(devices, uuids, opts.timeoutMs);
  acks.catch(() => undefined);
  const polls = Promise.all(devices.map((device) => commandPoll(device, 'DeviceInformation', opts.timeoutMs)));
  // Both are awaited below; a failure before then is reported there, not as an unhandled rejection.
  polls.catch(() => undefined);
  let queuedAt = 0;
  // One command (one UUID) for the whole fleet: the bulk action, BULK_COMMAND_MAX_DEVICES devices a call.
  for (let i = 0; i < devices.length; i += BULK_COMMAND_MAX_DEVICES) {
    const part = devices.slice(i, i + BULK_COMMAND_MAX_DEVICES);
    const result = await d.admin.call('POST', `${MANAGED_DEVICES}/queueAppleMdmCommand`, {
      requestType: 'DeviceInformation',
      payload: { Queries: ['DeviceName', 'OSVersion', 'BatteryLevel'] },
      managedDeviceIds: part.map((device) => ids.get(device.serial)!),
    });
    const queued = (result.successfulDeviceIds as string[]).length;
    if (queued !== part.length) throw new Error(`the bulk command reached ${queued} of ${part.length} devices: ${JSON.stringify({ ...result, successfulDeviceIds: undefined })}`);
    for (const device of part) uuids.set(device, result.commandUuid as string);
  }
  queuedAt = performance.now();
  const lastAck = await acks;
  const answered = await polls;
  const mismatched = devices.filter((device, i) => answered[i]!.commandUuid !== uuids.get(device) || answered[i]!.status !== 'Acknowledged');
  if (mismatched.length > 0) throw new Error(`${mismatched.length} devices answered another command, or not Acknowledged (first: ${mismatched[0]!.serial})`);
  // From the devices' own timestamps: the scan that noticed the last answer runs every 20 ms.
  const seconds = (lastAck - startedAtWallClock) / 1000;
  const used = process.cpuUsage(cpu);
  const pushErrors = devices.reduce((n, x) => n + x.pushErrors.length, 0);
  // Untimed: the server's own record of every command (the devices' logs said Acknowledged).
  let serverAcknowledged: number | undefined;
  if (opts.verifyServerState) {
    serverAcknowledged = 0;
    await runPool(devices.length, opts.adminConcurrency, async (i) => {
      const device = devices[i]!;
      const command = await d.admin.call('GET', `${MANAGED_DEVICES}/${ids.get(device.serial)!}/appleMdmCommands/${uuids.get(device)!}`);
      if (command.status === 'Acknowledged') serverAcknowledged!++;
    });
  }
  return {
    id: 'd',
    name: 'Command fan-out (push + acknowledge)',
    unit: 's',
    value: Math.round(seconds * 100) / 100,
    server: { ...window.end(), process: 'server' },
    generatorCpuSeconds: Math.round(((used.user + used.system) / 1e6) * 100) / 100,
    details: {
      devices: devices.length,
      adminCallsSeconds: Math.round(((queuedAt - started) / 1000) * 100) / 100,
      pushesAccepted: peers.apns.delivered().length - pushesBefore,
      devicePushErrors: pushErrors,
      devicePollRetries: devices.reduce((n, x) => n + x.pollRetries, 0),
      ...(pushErrors > 0 ? { firstPushError: devices.find((x) => x.pushErrors.length > 0)!.pushErrors[0]!.message } : {}),
      acknowledgementsPerSecond: Math.round(devices.length / seconds),
      managedDevices: ids.size,
      ...(serverAcknowledged === undefined ? {} : { serverAcknowledged }),
    },
  };
}
