import { createAppleDevice, deviceOptionsFor, type AppleDevice } from '../../sim/apple-device/index.js';
import { runPool, summarize, waitFor, type LatencySummary } from './stats.js';
import { awaitSync, connectToken, TOKENS, type Deployment, type Peers } from './world.js';

/**
 * The fleet the device scenarios use: iPhones at Apple assigned to an MDM server of their own, synced
 * in, given a default ADE profile (userless, so Setup Assistant asks nobody to sign in), and one
 * simulated device per serial that trusts the server's TLS certificate.
 */

export interface Fleet {
  tokenId: string;
  devices: AppleDevice[];
}

export async function prepareFleet(d: Deployment, peers: Peers, size: number, log: (line: string) => void): Promise<Fleet> {
  const prefix = d.store === 'sqlite' ? 'FS' : 'FP';
  const serials = Array.from({ length: size }, (_, i) => `${prefix}${i.toString(36).toUpperCase().padStart(8, '0')}`);
  const { tokenId } = await connectToken(d, peers.abm, `Fleet ${d.store}`, (serverUuid) => {
    peers.abm.addDevices(serials.map((serial_number) => ({ serial_number, model: 'iPhone 15', device_family: 'iPhone' })));
    peers.abm.assignDevicesToServer(serverUuid, { serials });
  });
  await awaitSync(d, tokenId, size, 300_000);
  const profile = await d.admin.call('POST', `${TOKENS}/${tokenId}/enrollmentProfiles`, {
    '@odata.type': '#microsoft.graph.depIOSEnrollmentProfile',
    displayName: 'Bench iPhones',
    requiresUserAuthentication: false,
  });
  await d.admin.call('POST', `${TOKENS}/${tokenId}/enrollmentProfiles/${String(profile.id)}/setDefaultProfile`);
  // The assigner defines the profile at Apple and assigns it to every serial (DEP /profile/devices).
  await waitFor('the default profile assigned at Apple', () => (serials.every((s) => peers.abm.device(s)?.profile_uuid) ? true : undefined), 300_000, 200);
  log(`fleet of ${size} synced and assigned; issuing the devices' Apple identities…`);
  const devices = serials.map((serial) =>
    createAppleDevice(deviceOptionsFor(peers.abm.device(serial)!, { deviceCa: peers.deviceCa, trustAnchors: [peers.tls.certPem], generateKey: peers.keys.generateKey })),
  );
  // What a device has before Setup Assistant starts: its Apple-issued identity (MachineInfo is still signed in the timed part).
  await runPool(devices.length, 16, async (i) => {
    await devices[i]!.signedMachineInfo();
  });
  return { tokenId, devices };
}

export interface EnrollmentRun {
  seconds: number;
  latency: LatencySummary;
  /** HTTP requests the devices made (MachineInfo, SCEP ×3, Authenticate, TokenUpdate, the first poll and its command results). */
  requests: number;
}

/**
 * Each device: ADE from its cloud configuration (MachineInfo, profile, SCEP, Authenticate,
 * TokenUpdate), then its first poll until the server has nothing more, then it hangs up as a
 * phone does (10,000 idle keep-alive sockets would be a load no real fleet puts on a server).
 */
export async function enrollAll(devices: readonly AppleDevice[], peers: Peers, concurrency: number): Promise<EnrollmentRun> {
  const latencies: number[] = [];
  let requests = 0;
  const started = performance.now();
  await runPool(devices.length, concurrency, async (i) => {
    const device = devices[i]!;
    const t0 = performance.now();
    await device.enrollAdeFromCloud(peers.abm);
    const first = await device.poll();
    latencies.push(performance.now() - t0);
    // GetCACaps, GetCACert, PKIOperation, MachineInfo, Authenticate, TokenUpdate, Idle, one per command result.
    requests += 7 + first.commands.length;
    device.dropConnections();
  });
  return { seconds: (performance.now() - started) / 1000, latency: summarize(latencies), requests };
}
