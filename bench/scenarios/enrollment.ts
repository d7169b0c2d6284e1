import { enrollAll, type Fleet } from '../lib/fleet.js';
import type { ScenarioResult } from '../lib/report.js';
import type { Deployment, Peers } from '../lib/world.js';

/** (b) ADE enrollment end to end: `count` devices of the fleet at `concurrency`, enrollments per second and per-device latency. */
export async function enrollment(d: Deployment, peers: Peers, fleet: Fleet, opts: { count: number; concurrency: number }): Promise<ScenarioResult> {
  const devices = fleet.devices.slice(0, opts.count);
  const window = d.server.meter.window();
  const cpu = process.cpuUsage();
  const run = await enrollAll(devices, peers, opts.concurrency);
  const used = process.cpuUsage(cpu);
  const enrolled = devices.filter((x) => x.enrolled).length;
  if (enrolled !== devices.length) throw new Error(`only ${enrolled} of ${devices.length} devices enrolled`);
  return {
    id: 'b',
    name: 'ADE enrollment end to end',
    unit: 'enrollments/s',
    value: Math.round((devices.length / run.seconds) * 10) / 10,
    latency: run.latency,
    server: { ...window.end(), process: 'server' },
    generatorCpuSeconds: Math.round(((used.user + used.system) / 1e6) * 100) / 100,
    details: { devices: devices.length, concurrency: opts.concurrency, seconds: Math.round(run.seconds * 100) / 100, httpRequests: run.requests, httpRequestsPerSecond: Math.round(run.requests / run.seconds) },
  };
}
