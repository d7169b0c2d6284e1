import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpsClient } from './https-client.js';
import { sleep } from './stats.js';

/** The server under test: the built `openenroll serve` in a process of its own, and what it costs. */

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** `npm run build` when dist is older than src/ or sim/ (a fresh clone has none). */
export function ensureBuilt(log: (line: string) => void): void {
  const sources = Math.max(newestMtime(path.join(ROOT, 'src')), newestMtime(path.join(ROOT, 'sim')));
  if (fs.existsSync(MAIN) && fs.statSync(MAIN).mtimeMs >= sources) return;
  log('building (npm run build)…');
  const res = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (!fs.existsSync(MAIN)) throw new Error(`npm run build produced no ${MAIN}:\n${res.stdout}\n${res.stderr}`);
  // tsc emits despite type errors elsewhere; bump the entry point so a stale check doesn't loop.
  const now = new Date();
  fs.utimesSync(MAIN, now, now);
}

/** Resident set size and CPU time of a process, from /proc (Linux); undefined elsewhere. */
export function processSample(pid: number): { rssBytes: number; cpuSeconds: number } | undefined {
  const s = readProc(pid);
  return s && { rssBytes: s.rssBytes, cpuSeconds: s.ownTicks / CLOCK_TICKS };
}

const CLOCK_TICKS = 100;

/** VmRSS (none for a zombie), own CPU ticks and those of the children it has reaped, of one process. */
function readProc(pid: number): { rssBytes: number; ownTicks: number; reapedChildTicks: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    // Fields 14 to 17 of /proc/<pid>/stat (after the parenthesised name): utime, stime, cutime, cstime in clock ticks.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      rssBytes: rssKb * 1024,
      ownTicks: Number(fields[11]) + Number(fields[12]),
      reapedChildTicks: Number(fields[13]) + Number(fields[14]),
    };
  } catch {
    return undefined;
  }
}

/** Every process whose parent chain leads to `root`, from a scan of /proc. */
function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // Field 4, after the parenthesised name: the parent's pid.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** How often a tree's membership is looked up again (cluster workers come and go rarely; a scan reads all of /proc). */
const RESCAN_MS = 1000;

/**
 * RSS and CPU of a process with all its descendants: `openenroll serve` with OPENENROLL_WORKERS forks
 * cluster workers, and the server's cost is theirs together. RSS is summed (pages the processes share
 * count once for each). CPU is each live process's own plus what its reaped children used (cutime,
 * cstime), so a worker that exits and is replaced doesn't take its CPU seconds out of the total.
 */
export class ProcessTree {
  private members: number[] = [];
  private scannedAt = -Infinity;

  constructor(private readonly root: number) {}

  sample(): { rssBytes: number; cpuSeconds: number } | undefined {
    const root = readProc(this.root);
    if (!root) return undefined;
    if (performance.now() - this.scannedAt >= RESCAN_MS) {
      this.members = descendantsOf(this.root);
      this.scannedAt = performance.now();
    }
    let rssBytes = root.rssBytes;
    let ticks = root.ownTicks + root.reapedChildTicks;
    for (const pid of this.members) {
      const s = readProc(pid);
      if (!s) {
        // Exited: its time is (or soon will be) in its parent's reaped-children figures; look again next time.
        this.scannedAt = -Infinity;
        continue;
      }
      rssBytes += s.rssBytes;
      ticks += s.ownTicks + s.reapedChildTicks;
    }
    return { rssBytes, cpuSeconds: ticks / CLOCK_TICKS };
  }
}

/** Samples a process tree every 100 ms; each window (a scenario, the whole run: they nest) reads its own peak RSS and CPU seconds. */
export class ProcessMeter {
  private readonly open = new Set<{ peakRss: number }>();
  private readonly timer: NodeJS.Timeout;
  private readonly tree: ProcessTree;

  constructor(pid: number) {
    this.tree = new ProcessTree(pid);
    this.timer = setInterval(() => this.sample(), 100);
    this.timer.unref();
  }

  private sample(): { rssBytes: number; cpuSeconds: number } | undefined {
    const s = this.tree.sample();
    if (s) for (const w of this.open) w.peakRss = Math.max(w.peakRss, s.rssBytes);
    return s;
  }

  /** Starts a measurement window: its peak RSS (MB) and the CPU seconds used in it. */
  window(): { end(): { peakRssMb: number; cpuSeconds: number } } {
    const w = { peakRss: 0 };
    this.open.add(w);
    const start = this.sample();
    return {
      end: () => {
        const end = this.sample();
        this.open.delete(w);
        return { peakRssMb: Math.round(w.peakRss / 1048576), cpuSeconds: start && end ? Math.round((end.cpuSeconds - start.cpuSeconds) * 100) / 100 : NaN };
      },
    };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export interface ServerProcess {
  proc: ChildProcess;
  publicUrl: string;
  bootstrapKey: string;
  meter: ProcessMeter;
  output(): string;
  stop(): Promise<void>;
}

const TOKEN = /oe_[a-z0-9]{16}_[A-Za-z0-9_-]{43}/;

/** Spawns `node dist/src/cli/main.js serve` with `env` (which sets PORT) and waits until it answers /healthz over TLS. */
export async function startServer(env: Record<string, string>, opts: { tlsCaPem: string; port: number; nodeArgs?: string[] }): Promise<ServerProcess> {
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), MAIN, 'serve'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  // Keep only the tail: a long run logs warnings we don't want to hold in memory.
  const keep = (d: Buffer) => {
    out = (out + d.toString('utf8')).slice(-200_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => proc.on('exit', () => ((exited = true), resolve())));
  const publicUrl = `https://localhost:${opts.port}`;
  const probe = new HttpsClient(publicUrl, { ca: opts.tlsCaPem, maxSockets: 1 });
  const deadline = performance.now() + 60_000;
  try {
    for (;;) {
      if (exited) throw new Error(`openenroll serve exited early:\n${out}`);
      if (performance.now() > deadline) throw new Error(`openenroll serve did not answer within 60 s:\n${out}`);
      const ok = await probe.request('GET', '/healthz').then((r) => r.status === 200, () => false);
      if (ok && TOKEN.test(out)) break;
      await sleep(50);
    }
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  } finally {
    probe.close();
  }
  const meter = new ProcessMeter(proc.pid!);
  return {
    proc,
    publicUrl,
    bootstrapKey: TOKEN.exec(out)![0],
    meter,
    output: () => out,
    async stop() {
      meter.stop();
      if (!exited) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exit;
      clearTimeout(timer);
    },
  };
}
