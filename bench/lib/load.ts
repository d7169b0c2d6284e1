import { HttpsClient } from './https-client.js';
import { summarize, type LatencySummary } from './stats.js';

/** A closed-loop load: `concurrency` lanes each sending the next prepared request as soon as the last one answered. */

export interface PreparedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface LoadResult {
  requests: number;
  perSecond: number;
  latency: LatencySummary;
  seconds: number;
  generatorCpuSeconds: number;
}

/**
 * Replays `requests` round robin for `durationMs` after `warmupMs` (not counted) against `baseUrl`
 * (the prepared URLs' paths are kept). Every answer must be `expectStatus` with an empty body.
 */
export async function replayLoad(opts: { baseUrl: string; caPem: string; requests: readonly PreparedRequest[]; concurrency: number; durationMs: number; warmupMs: number; expectStatus: number }): Promise<LoadResult> {
  const client = new HttpsClient(opts.baseUrl, { ca: opts.caPem, maxSockets: opts.concurrency });
  const paths = opts.requests.map((r) => {
    const u = new URL(r.url);
    return u.pathname + u.search;
  });
  let next = 0;
  let counting = false;
  let stop = false;
  let failure: Error | undefined;
  const samples: number[] = [];
  const lane = async () => {
    while (!stop) {
      const i = next++ % opts.requests.length;
      const r = opts.requests[i]!;
      const res = await client.request(r.method, paths[i]!, r.headers, r.body);
      if (res.status !== opts.expectStatus || res.body.length !== 0) {
        failure ??= new Error(`${r.method} ${paths[i]} answered ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
        stop = true;
      }
      if (counting) samples.push(res.ms);
    }
  };
  const lanes = Array.from({ length: opts.concurrency }, lane);
  await new Promise((resolve) => setTimeout(resolve, opts.warmupMs));
  counting = true;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, opts.durationMs));
  counting = false;
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  stop = true;
  await Promise.all(lanes);
  client.close();
  if (failure) throw failure;
  return { requests: samples.length, perSecond: Math.round(samples.length / seconds), latency: summarize(samples), seconds, generatorCpuSeconds: Math.round(((used.user + used.system) / 1e6) * 100) / 100 };
}
