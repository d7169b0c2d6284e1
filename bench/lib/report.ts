import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LatencySummary } from './stats.js';

/** What each scenario reports, how runs are written to bench/results/, and the targets of the issue. */

export interface ScenarioResult {
  id: 'a' | 'b' | 'c' | 'd' | 'e';
  name: string;
  /** e.g. devices/s, enrollments/s, requests/s, s. */
  unit: string;
  value: number;
  latency?: LatencySummary;
  /** The ceiling it is compared with, and value / ceiling (for "s", ceiling / value: higher is better). */
  ceiling?: { name: string; value: number; unit: string; ratio: number };
  /** The process doing the work: the server under test unless said otherwise. */
  server: { peakRssMb: number; cpuSeconds: number; process?: 'server' | 'bench' };
  /** CPU seconds the load generator (this process) used meanwhile. */
  generatorCpuSeconds?: number;
  details: Record<string, unknown>;
}

export interface CeilingResult {
  id: 'bare-route' | 'raw-insert';
  name: string;
  unit: string;
  value: number;
  latency?: LatencySummary;
  details: Record<string, unknown>;
}

export interface StoreRun {
  store: 'sqlite' | 'postgres' | 'none';
  scenarios: ScenarioResult[];
  ceilings: CeilingResult[];
  /** Peak RSS of the server over the whole run of this store. */
  serverPeakRssMb?: number;
  errors: string[];
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}

export interface BenchRun {
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; cpuModel: string; node: string; platform: string; totalMemoryMb: number; loadAverage: number[] };
  options: Record<string, unknown>;
  precomputed: string[];
  runs: StoreRun[];
  targets: TargetCheck[];
}

export function machineInfo(): BenchRun['machine'] {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '?',
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    totalMemoryMb: Math.round(os.totalmem() / 1048576),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** The issue's targets, for embedded SQLite on the 2-core machine. Unmeasured ones (and any at smoke scale) are null. */
export function checkTargets(runs: StoreRun[], scale: 'full' | 'smoke' = 'full'): TargetCheck[] {
  if (scale === 'smoke') return checkTargets(runs).map((t) => ({ ...t, measured: `${t.measured} (smoke scale: not a measurement of the target)`, met: null }));
  const sqlite = runs.find((r) => r.store === 'sqlite');
  const find = (id: ScenarioResult['id']) => sqlite?.scenarios.find((s) => s.id === id);
  const a = find('a');
  const b = find('b');
  const c = find('c');
  const d = find('d');
  const rss = sqlite?.serverPeakRssMb;
  return [
    { target: 'SQLite sync ingest ≥ 20,000 devices/s', measured: a ? `${a.value} devices/s` : 'not run', met: a ? a.value >= 20_000 : null },
    { target: 'SQLite ≥ 500 enrollments/s', measured: b ? `${b.value} enrollments/s` : 'not run', met: b ? b.value >= 500 : null },
    {
      target: 'SQLite ≥ 5,000 idle check-ins/s with p99 < 20 ms',
      measured: c ? `${c.value} requests/s, p99 ${c.latency?.p99Ms} ms` : 'not run',
      met: c ? c.value >= 5000 && (c.latency?.p99Ms ?? Infinity) < 20 : null,
    },
    { target: 'SQLite fan-out to 10,000 devices < 10 s', measured: d ? `${d.value} s for ${String(d.details.devices)} devices` : 'not run', met: d && d.details.devices === 10_000 ? d.value < 10 : null },
    { target: 'SQLite server RSS < 300 MB throughout', measured: rss !== undefined ? `${rss} MB peak` : 'not run', met: rss !== undefined ? rss < 300 : null },
  ];
}

const fmt = (n: number) => (Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 }));

/** A Markdown report: one table per store, the ceilings, the targets. */
export function markdown(run: BenchRun): string {
  const lines: string[] = [];
  lines.push(`# OpenEnroll bench, ${run.startedAt}`, '');
  lines.push(`${run.machine.cpus} × ${run.machine.cpuModel}, Node ${run.machine.node}, ${run.machine.platform}, load average at start ${run.machine.loadAverage.join(' / ')}.`, '');
  lines.push(`Options: \`${JSON.stringify(run.options)}\``, '');
  if (run.precomputed.length) lines.push('Precomputed before the timed sections:', ...run.precomputed.map((p) => `- ${p}`), '');
  for (const r of run.runs) {
    lines.push(`## ${r.store === 'none' ? 'No store (pure engine)' : r.store === 'sqlite' ? 'Embedded SQLite' : 'PostgreSQL'}`, '');
    if (r.scenarios.length) {
      lines.push('| Scenario | Result | p50 / p95 / p99 ms | Ceiling | Ratio | Peak RSS | Server CPU s | Generator CPU s |', '|---|---|---|---|---|---|---|---|');
      for (const s of r.scenarios) {
        const lat = s.latency ? `${s.latency.p50Ms} / ${s.latency.p95Ms} / ${s.latency.p99Ms}` : '';
        const ceiling = s.ceiling ? `${s.ceiling.name}: ${fmt(s.ceiling.value)} ${s.ceiling.unit}` : '';
        const ratio = s.ceiling ? `${fmt(s.ceiling.ratio)}` : '';
        lines.push(`| (${s.id}) ${s.name} | ${fmt(s.value)} ${s.unit} | ${lat} | ${ceiling} | ${ratio} | ${s.server.peakRssMb} MB${s.server.process === 'bench' ? ' (bench)' : ''} | ${fmt(s.server.cpuSeconds)} | ${s.generatorCpuSeconds === undefined ? '' : fmt(s.generatorCpuSeconds)} |`);
      }
      lines.push('');
    }
    if (r.ceilings.length) {
      lines.push('| Ceiling | Result | p50 / p95 / p99 ms |', '|---|---|---|');
      for (const c of r.ceilings) lines.push(`| ${c.name} | ${fmt(c.value)} ${c.unit} | ${c.latency ? `${c.latency.p50Ms} / ${c.latency.p95Ms} / ${c.latency.p99Ms}` : ''} |`);
      lines.push('');
    }
    if (r.serverPeakRssMb !== undefined) lines.push(`Server peak RSS over the whole ${r.store} run: ${r.serverPeakRssMb} MB.`, '');
    for (const s of r.scenarios) lines.push(`- (${s.id}) details: \`${JSON.stringify(s.details)}\``);
    for (const e of r.errors) lines.push(`- **error**: ${e}`);
    lines.push('');
  }
  lines.push('## Targets (embedded SQLite, 2 cores)', '', '| Target | Measured | Met |', '|---|---|---|');
  for (const t of run.targets) lines.push(`| ${t.target} | ${t.measured} | ${t.met === null ? 'not measured' : t.met ? 'yes' : '**no**'} |`);
  lines.push('');
  return lines.join('\n');
}

/** Writes <timestamp>.json/.md and latest.json/.md into `dir`; returns the paths. */
export function writeResults(dir: string, run: BenchRun): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = run.startedAt.replace(/[:.]/g, '-');
  const json = `${JSON.stringify(run, null, 2)}\n`;
  const md = markdown(run);
  const files: Array<[string, string]> = [
    [`${stamp}.json`, json],
    [`${stamp}.md`, md],
    ['latest.json', json],
    ['latest.md', md],
  ];
  for (const [name, content] of files) {
    // Write then rename, so an interrupted run never leaves half a latest.json.
    const tmp = path.join(dir, `${name}.tmp`);
    fs.writeFileSync(tmp, content);
    fs.renameSync(tmp, path.join(dir, name));
  }
  return files.map(([name]) => path.join(dir, name));
}

/** One line per scenario for stdout. */
export function scenarioLine(store: string, s: ScenarioResult): string {
  const lat = s.latency ? ` p50 ${s.latency.p50Ms} ms, p95 ${s.latency.p95Ms} ms, p99 ${s.latency.p99Ms} ms;` : '';
  const ceiling = s.ceiling ? ` ceiling ${s.ceiling.name} ${fmt(s.ceiling.value)} ${s.ceiling.unit}, ratio ${fmt(s.ceiling.ratio)};` : '';
  return `[${store}] (${s.id}) ${s.name}: ${fmt(s.value)} ${s.unit};${lat}${ceiling} peak RSS ${s.server.peakRssMb} MB (${s.server.process ?? 'server'}), CPU ${s.server.cpuSeconds} s`;
}
