import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../test/helpers/pg-cluster.js';
import { replayLoad, type PreparedRequest } from '../lib/load.js';
import type { CeilingResult } from '../lib/report.js';
import { ProcessMeter, ROOT } from '../lib/server.js';

/** The same Idle load against a bare Fastify route in its own process: what HTTP + TLS alone allow on this machine. */
export async function bareRouteCeiling(opts: { certFile: string; keyFile: string; caPem: string; requests: readonly PreparedRequest[]; concurrency: number; durationMs: number }): Promise<CeilingResult> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/ceilings/bare-route-server.ts'), String(port), opts.certFile, opts.keyFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      proc.on('exit', (code) => reject(new Error(`the bare route server exited with ${code}`)));
    });
    const meter = new ProcessMeter(proc.pid!);
    const window = meter.window();
    const load = await replayLoad({ baseUrl: `https://localhost:${port}`, caPem: opts.caPem, requests: opts.requests, concurrency: opts.concurrency, durationMs: opts.durationMs, warmupMs: Math.min(1000, opts.durationMs / 5), expectStatus: 200 });
    const used = window.end();
    meter.stop();
    return {
      id: 'bare-route',
      name: 'Bare Fastify route, same TLS and payload',
      unit: 'requests/s',
      value: load.perSecond,
      latency: load.latency,
      details: { requests: load.requests, concurrency: opts.concurrency, peakRssMb: used.peakRssMb, cpuSeconds: used.cpuSeconds, generatorCpuSeconds: load.generatorCpuSeconds },
    };
  } finally {
    proc.kill('SIGTERM');
  }
}
