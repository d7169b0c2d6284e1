import path from 'node:path';
import { bareRouteCeiling } from './ceilings/bare-route.js';
import { rawInsertCeiling } from './ceilings/raw-insert.js';
import { enrollAll, prepareFleet, type Fleet } from './lib/fleet.js';
import { checkTargets, machineInfo, markdown, scenarioLine, writeResults, type BenchRun, type CeilingResult, type ScenarioResult, type StoreRun } from './lib/report.js';
import { ensureBuilt, ROOT } from './lib/server.js';
import { startDeployment, startPeers, type Peers, type StoreKind } from './lib/world.js';
import { enrollment } from './scenarios/enrollment.js';
import { fanout } from './scenarios/fanout.js';
import { idleCheckins, idleReports } from './scenarios/idle-checkins.js';
import { policyEvaluation } from './scenarios/policy-evaluation.js';
import { syncIngest } from './scenarios/sync-ingest.js';

/**
 * `npm run bench [-- --store sqlite|postgres|both] [--only a,b,c,d,e] [--scale full|smoke] [--devices n] [--out dir] [--cpu-prof]`
 * Runs the scenarios against a spawned `openenroll serve` per store, measures the ceilings in the
 * same run, prints everything and writes bench/results/<timestamp>.json/.md and latest.json/.md.
 */

type ScenarioId = 'a' | 'b' | 'c' | 'd' | 'e';

export interface Scale {
  ingestDevices: number;
  enrollDevices: number;
  enrollConcurrency: number;
  idleConcurrency: number;
  idleDurationMs: number;
  fanoutDevices: number;
  policyDurationMs: number;
  keyPoolSize: number;
  rawInsertRows: number;
  /** Read every fan-out command back through the admin API after the timed part (smoke: correctness). */
  verifyServerState: boolean;
}

export const SCALES: Record<'full' | 'smoke', Scale> = {
  full: { ingestDevices: 100_000, enrollDevices: 5000, enrollConcurrency: 200, idleConcurrency: 64, idleDurationMs: 10_000, fanoutDevices: 10_000, policyDurationMs: 3000, keyPoolSize: 128, rawInsertRows: 100_000, verifyServerState: false },
  smoke: { ingestDevices: 500, enrollDevices: 50, enrollConcurrency: 10, idleConcurrency: 8, idleDurationMs: 1000, fanoutDevices: 50, policyDurationMs: 200, keyPoolSize: 8, rawInsertRows: 2000, verifyServerState: true },
};

export interface BenchOptions {
  stores: StoreKind[];
  only: ScenarioId[];
  scale: 'full' | 'smoke';
  outDir: string | undefined;
  cpuProfileDir: string | undefined;
  /** Extra environment for the server under test (e.g. OPENENROLL_WORKERS). */
  serverEnv: Record<string, string>;
  /** Fleet size for (b), (c) and (d) instead of the scale's (a shorter run; reported in the options). */
  devices?: number;
  /** PostgreSQL to use instead of DATABASE_URL or a throwaway cluster (the test suite passes its own). */
  postgresUrl?: string;
  /** Replaces `npm run build` when dist is stale (the test suite serialises builds across workers). */
  build?: () => Promise<void>;
  /** Progress lines; default stdout with a time. */
  log?: (line: string) => void;
}

export function parseArgs(argv: readonly string[]): BenchOptions {
  const opts: BenchOptions = { stores: ['sqlite', 'postgres'], only: ['a', 'b', 'c', 'd', 'e'], scale: 'full', outDir: path.join(ROOT, 'bench/results'), cpuProfileDir: undefined, serverEnv: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--store') {
      const v = value();
      if (v === 'both') opts.stores = ['sqlite', 'postgres'];
      else if (v === 'sqlite' || v === 'postgres') opts.stores = [v];
      else throw new Error('--store is sqlite, postgres or both');
    } else if (arg === '--only') {
      const ids = value().split(',').map((s) => s.trim().toLowerCase());
      for (const id of ids) if (!['a', 'b', 'c', 'd', 'e'].includes(id)) throw new Error(`--only takes scenario letters a–e, not ${id}`);
      opts.only = ids as ScenarioId[];
    } else if (arg === '--scale') {
      const v = value();
      if (v !== 'full' && v !== 'smoke') throw new Error('--scale is full or smoke');
      opts.scale = v;
    } else if (arg === '--out') {
      opts.outDir = path.resolve(value());
    } else if (arg === '--no-write') {
      opts.outDir = undefined;
    } else if (arg === '--cpu-prof') {
      opts.cpuProfileDir = path.join(ROOT, 'bench/results/profiles');
    } else if (arg === '--devices') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new Error('--devices takes a positive integer');
      opts.devices = n;
    } else if (arg === '--server-env') {
      const [k, ...v] = value().split('=');
      opts.serverEnv[k!] = v.join('=');
    } else {
      throw new Error(`unknown argument ${arg}`);
    }
  }
  return opts;
}

const stdoutLog = (line: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${line}`);
let log = stdoutLog;

function withRatio(s: ScenarioResult, ceiling: CeilingResult | undefined, achieved: number, label: string): ScenarioResult {
  if (!ceiling) return s;
  return { ...s, ceiling: { name: `${ceiling.name} (${label})`, value: ceiling.value, unit: ceiling.unit, ratio: Math.round((achieved / ceiling.value) * 1000) / 1000 } };
}

/** Every selected scenario against one store, on a fresh server. */
/** The scale's values, with the fleet size of `--devices` when given. */
function scaleOf(opts: BenchOptions): Scale {
  const scale = SCALES[opts.scale];
  return opts.devices ? { ...scale, enrollDevices: opts.devices, fanoutDevices: opts.devices } : scale;
}

async function runStore(store: StoreKind, peers: Peers, opts: BenchOptions, shared: { bareRoute?: CeilingResult }): Promise<StoreRun> {
  const scale = scaleOf(opts);
  const has = (id: ScenarioId) => opts.only.includes(id);
  const run: StoreRun = { store, scenarios: [], ceilings: [], errors: [] };
  // Cluster workers inherit these flags: with OPENENROLL_WORKERS one file name would be written by every
  // process, so there Node's default names (which hold the pid) are kept.
  const profileName = opts.serverEnv.OPENENROLL_WORKERS ? [] : [`--cpu-prof-name=server-${store}-${Date.now()}.cpuprofile`];
  const nodeArgs = opts.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfileDir}`, ...profileName] : [];
  log(`[${store}] starting the server`);
  const d = await startDeployment(peers, store, { nodeArgs, extraEnv: opts.serverEnv });
  const whole = d.server.meter.window();
  const record = (s: ScenarioResult) => {
    run.scenarios.push(s);
    log(scenarioLine(store, s));
  };
  try {
    if (has('a')) {
      log(`[${store}] (a) ADE sync ingest of ${scale.ingestDevices} devices`);
      const a = await syncIngest(d, peers, { devices: scale.ingestDevices });
      log(`[${store}] ceiling: raw batched INSERT of ${scale.rawInsertRows} rows`);
      const raw = await rawInsertCeiling(d, { rows: scale.rawInsertRows, batch: 1000 });
      run.ceilings.push(raw);
      record(withRatio(a, raw, a.value, 'devices/s vs rows/s'));
    }
    const wantDevices = has('d') ? scale.fanoutDevices : has('b') || has('c') ? scale.enrollDevices : 0;
    let fleet: Fleet | undefined;
    if (wantDevices > 0) {
      log(`[${store}] preparing a fleet of ${wantDevices} devices (untimed)`);
      fleet = await prepareFleet(d, peers, Math.max(wantDevices, has('b') ? scale.enrollDevices : 0), log);
    }
    const ensureEnrolled = async (n: number) => {
      const todo = fleet!.devices.slice(0, n).filter((x) => !x.enrolled);
      if (todo.length === 0) return;
      log(`[${store}] enrolling ${todo.length} more devices (setup, untimed)`);
      await enrollAll(todo, peers, scale.enrollConcurrency);
    };
    let b: ScenarioResult | undefined;
    if (has('b')) {
      log(`[${store}] (b) ADE enrollment: ${scale.enrollDevices} devices at concurrency ${scale.enrollConcurrency}`);
      b = await enrollment(d, peers, fleet!, { count: scale.enrollDevices, concurrency: scale.enrollConcurrency });
    }
    if (has('c') || has('b') || has('d')) {
      await ensureEnrolled(scale.enrollDevices);
      if (!shared.bareRoute) {
        log('ceiling: bare Fastify route with the same Idle requests');
        shared.bareRoute = await bareRouteCeiling({ certFile: peers.tls.certFile, keyFile: peers.tls.keyFile, caPem: peers.tls.certPem, requests: idleReports(fleet!), concurrency: scale.idleConcurrency, durationMs: scale.idleDurationMs });
      }
      run.ceilings.push(shared.bareRoute);
    }
    if (b) record(withRatio(b, shared.bareRoute, Number(b.details.httpRequestsPerSecond), 'device requests/s vs requests/s'));
    if (has('c')) {
      log(`[${store}] (c) idle check-ins for ${scale.idleDurationMs / 1000} s at concurrency ${scale.idleConcurrency}`);
      const c = await idleCheckins(d, peers, fleet!, { concurrency: scale.idleConcurrency, durationMs: scale.idleDurationMs });
      record(withRatio(c, shared.bareRoute, c.value, 'requests/s'));
    }
    if (has('d')) {
      await ensureEnrolled(scale.fanoutDevices);
      log(`[${store}] (d) command fan-out to ${scale.fanoutDevices} devices`);
      const f = await fanout(d, peers, fleet!, { adminConcurrency: 32, timeoutMs: 300_000, verifyServerState: scale.verifyServerState });
      // Admin POST, then per device: Idle (gets the command) and its result.
      record(withRatio(f, shared.bareRoute, (3 * Number(f.details.devices)) / f.value, 'requests/s'));
    }
    for (const device of fleet?.devices ?? []) device.close();
  } catch (err) {
    run.errors.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
    log(`[${store}] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\nserver output (tail):\n${d.server.output().slice(-4000)}`);
  } finally {
    run.serverPeakRssMb = whole.end().peakRssMb;
    await d.close();
  }
  return run;
}

export async function runBench(opts: BenchOptions): Promise<BenchRun> {
  log = opts.log ?? stdoutLog;
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const scale = scaleOf(opts);
  const runs: StoreRun[] = [];
  const precomputed = [
    `${scale.keyPoolSize} RSA-2048 keys, shared round robin by the simulated devices for their Apple identity and SCEP key (key generation is ~100 ms of CPU each)`,
    "each device's Apple-issued identity certificate (its MachineInfo is still signed inside the timed part)",
    "each device's signed Idle report for (c) (signed once per device, replayed; the server verifies every one)",
  ];
  if (opts.only.includes('e')) {
    log('(e) policy evaluation');
    const e = policyEvaluation({ durationMs: scale.policyDurationMs });
    log(scenarioLine('no store', e));
    runs.push({ store: 'none', scenarios: [e], ceilings: [], errors: [] });
  }
  const serverScenarios = opts.only.filter((id) => id !== 'e');
  if (serverScenarios.length > 0) {
    if (opts.build) await opts.build();
    else ensureBuilt(log);
    log(`generating ${scale.keyPoolSize} device keys and the simulators`);
    const peers = await startPeers({ keyPoolSize: scale.keyPoolSize, ...(opts.postgresUrl ? { postgresUrl: opts.postgresUrl } : {}) });
    const shared: { bareRoute?: CeilingResult } = {};
    try {
      for (const store of opts.stores) {
        runs.push(await runStore(store, peers, opts, shared));
        // A long run keeps what it has measured: each finished store is written at once (same file names, completed at the end).
        if (opts.outDir && store !== opts.stores.at(-1)) {
          const partial = { startedAt, finishedAt: new Date().toISOString(), machine, options: { ...opts, outDir: undefined, build: undefined, log: undefined, postgresUrl: undefined, scale: opts.scale, scaleValues: scale, partial: true }, precomputed, runs, targets: checkTargets(runs, opts.scale) };
          for (const f of writeResults(opts.outDir, partial)) log(`wrote ${path.relative(ROOT, f)} (after ${store})`);
        }
      }
    } finally {
      await peers.close();
    }
  }
  return { startedAt, finishedAt: new Date().toISOString(), machine, options: { ...opts, outDir: undefined, build: undefined, log: undefined, postgresUrl: undefined, scale: opts.scale, scaleValues: scale }, precomputed, runs, targets: checkTargets(runs, opts.scale) };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const run = await runBench(opts);
  console.log(`\n${markdown(run)}`);
  if (opts.outDir) for (const f of writeResults(opts.outDir, run)) log(`wrote ${path.relative(ROOT, f)}`);
  if (run.runs.some((r) => r.errors.length > 0)) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    () => process.exit(),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
