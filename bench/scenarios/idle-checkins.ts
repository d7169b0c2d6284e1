import type { Fleet } from '../lib/fleet.js';
import { replayLoad, type PreparedRequest } from '../lib/load.js';
import type { ScenarioResult } from '../lib/report.js';
import type { Deployment, Peers } from '../lib/world.js';

/** The enrolled devices' Idle reports, each signed once by its device (Mdm-Signature) ahead of the load. */
export function idleReports(fleet: Fleet): PreparedRequest[] {
  return fleet.devices.filter((x) => x.enrolled).map((x) => ({ method: 'PUT', ...x.idleReport() }));
}

/**
 * (c) Idle check-ins: enrolled devices poll with nothing queued; the server verifies every
 * signature, finds the enrollment, finds no command and answers an empty 200.
 */
export async function idleCheckins(d: Deployment, peers: Peers, fleet: Fleet, opts: { concurrency: number; durationMs: number }): Promise<ScenarioResult> {
  const requests = idleReports(fleet);
  if (requests.length === 0) throw new Error('no enrolled devices to poll');
  const window = d.server.meter.window();
  const load = await replayLoad({ baseUrl: d.server.publicUrl, caPem: peers.tls.certPem, requests, concurrency: opts.concurrency, durationMs: opts.durationMs, warmupMs: Math.min(1000, opts.durationMs / 5), expectStatus: 200 });
  return {
    id: 'c',
    name: 'Idle check-ins (signed)',
    unit: 'requests/s',
    value: load.perSecond,
    latency: load.latency,
    server: { ...window.end(), process: 'server' },
    generatorCpuSeconds: load.generatorCpuSeconds,
    details: { devices: requests.length, concurrency: opts.concurrency, requests: load.requests, seconds: Math.round(load.seconds * 100) / 100, bodyBytes: requests[0]!.body.length, signatureHeaderBytes: requests[0]!.headers['mdm-signature']?.length },
  };
}
