import type { ScenarioResult } from '../lib/report.js';
import { awaitSync, connectToken, type Deployment, type Peers } from '../lib/world.js';

/**
 * (a) ADE sync ingest: Apple (the ABM simulator, over loopback HTTP) holds `devices` devices for a
 * new MDM server; the token upload schedules the first sync, which pages through them into the
 * store. Timed from the upload to the token's sync status "succeeded" (includes the job pick-up,
 * at most OPENENROLL_JOBS_POLL_MS = 100 ms).
 */
export async function syncIngest(d: Deployment, peers: Peers, opts: { devices: number }): Promise<ScenarioResult> {
  const prefix = d.store === 'sqlite' ? 'IS' : 'IP';
  let generated = 0;
  const window = d.server.meter.window();
  const cpu = process.cpuUsage();
  let started = 0;
  const { tokenId } = await connectToken(d, peers.abm, `Ingest ${d.store}`, (serverUuid) => {
    generated = peers.abm.generateDevices(opts.devices, { serverUuid, prefix }).length;
    started = performance.now();
  });
  const token = await awaitSync(d, tokenId, generated, 600_000);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const pages = peers.abm.requests.filter((r) => r.path === '/server/devices' || r.path === '/devices/sync').length;
  return {
    id: 'a',
    name: 'ADE sync ingest',
    unit: 'devices/s',
    value: Math.round(generated / seconds),
    server: { ...window.end(), process: 'server' },
    generatorCpuSeconds: Math.round(((used.user + used.system) / 1e6) * 100) / 100,
    details: { devices: generated, seconds: Math.round(seconds * 100) / 100, syncedDeviceCount: token.syncedDeviceCount, depRequestsSoFar: pages },
  };
}
