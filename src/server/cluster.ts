import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createLogger } from '../observability/logger.js';
import { exitOnStop, prepareFirstStart, startServer } from './start.js';

/**
 * `openenroll serve` with OPENENROLL_WORKERS=n > 1, on node:cluster. The primary serves no HTTP: it
 * loads the master key, migrates the store and makes the first start's bootstrap (banner included)
 * once, then forks n workers that each build the whole app and listen on the shared port (the
 * primary accepts connections and hands them out in turn). It restarts a worker that dies, with a
 * growing delay, and on SIGTERM or SIGINT asks every worker to stop gracefully, then exits.
 *
 * What several processes share lives in the store: job leases, the admin rate limit's counters (see
 * app.ts), the ADE manual sync limit. What each keeps to itself: /metrics (labelled `worker`),
 * caches, and the in-memory state of whatever request it is serving.
 */

/** Set by the primary in each worker's environment: the worker's slot, 1..n (a replacement keeps its slot). */
const WORKER_INDEX_ENV = 'OPENENROLL_WORKER_INDEX';

const STOP = 'openenroll:stop';
const READY = 'openenroll:ready';
const START_FAILED = 'openenroll:start-failed';

type PrimaryMessage = { type: typeof STOP };
type WorkerMessage = { type: typeof READY; url: string; store: string } | { type: typeof START_FAILED; message: string };

/** A worker that stayed up this long has its earlier crashes forgiven. */
const STABLE_AFTER_MS = 60_000;
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;

/** How long the primary waits before replacing a worker after `consecutiveCrashes` crashes in a row: 0.5 s doubling up to 30 s. */
export function restartDelayMs(consecutiveCrashes: number): number {
  return Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** Math.max(0, consecutiveCrashes - 1));
}

/** Runs this process's part: the primary, or (when cluster forked it) one worker. */
export async function serveWithWorkers(config: Config, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  if (cluster.isPrimary) await runPrimary(config, out);
  else await runWorker(config, out);
}

async function runWorker(config: Config, out: NodeJS.WritableStream): Promise<void> {
  const index = Number(process.env[WORKER_INDEX_ENV]) || cluster.worker!.id;
  // Until the server is up, a stop request (from the primary, or a signal: Ctrl-C reaches the whole
  // process group) is remembered and carried out once there is something to stop.
  let stopAsked = false;
  let requestStop = (_reason: string) => {
    stopAsked = true;
  };
  process.on('message', (msg: PrimaryMessage) => {
    if (msg?.type === STOP) requestStop('asked by the primary');
  });
  const stopWhenStarted = () => requestStop('signal while starting');
  process.on('SIGTERM', stopWhenStarted);
  process.on('SIGINT', stopWhenStarted);
  let started: Awaited<ReturnType<typeof startServer>>;
  try {
    started = await startServer(config, out, { workerIndex: index });
  } catch (err) {
    // The primary reports it (once, not once per worker) and decides what happens next.
    const failed: WorkerMessage = { type: START_FAILED, message: err instanceof Error ? err.message : String(err) };
    process.send!(failed, undefined, undefined, () => process.exit(1));
    return;
  }
  const { app, url } = started;
  process.off('SIGTERM', stopWhenStarted);
  process.off('SIGINT', stopWhenStarted);
  requestStop = exitOnStop(app, config);
  app.core.logger.info({ url, pid: process.pid }, 'worker listening');
  const ready: WorkerMessage = { type: READY, url, store: app.core.store.dialect };
  process.send!(ready);
  if (stopAsked) requestStop('asked while starting');
}

async function runPrimary(config: Config, out: NodeJS.WritableStream): Promise<void> {
  // Its lines name the worker they are about in `worker`, as the workers' own lines do.
  const logger = createLogger(config.logLevel).child({ role: 'primary' });
  await prepareFirstStart(config, out, logger);
  const supervisor = new WorkerSupervisor(config, logger);
  const onSignal = (signal: NodeJS.Signals) => {
    if (supervisor.stopping) {
      // A second signal means "now".
      logger.warn({ signal }, 'forced exit');
      supervisor.kill();
      process.exit(1);
    }
    logger.info({ reason: signal, workers: supervisor.liveWorkers }, 'shutting down');
    void supervisor.stop().then((code) => {
      logger.info({ exitCode: code }, 'stopped');
      process.exit(code);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const { url, store } = await supervisor.start();
  logger.info({ url, store, workers: config.workers, startupMs: Math.round(performance.now()) }, 'OpenEnroll listening');
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  /** When its current worker said it was ready; undefined while it starts. */
  readySince: number | undefined;
  /** Crashes in a row, for the restart delay. */
  crashes: number;
  restartTimer: NodeJS.Timeout | undefined;
}

class WorkerSupervisor {
  stopping = false;
  private readonly slots: Slot[];
  /** Until every slot's first worker is ready, a worker that dies means the start failed. */
  private starting = true;
  private startFailure: Error | undefined;
  private failedStops = 0;
  private readonly allExitedWaiters: (() => void)[] = [];
  private readyWaiter: { resolve(v: { url: string; store: string }): void; reject(err: Error): void } | undefined;
  private firstReady: { url: string; store: string } | undefined;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {
    this.slots = Array.from({ length: config.workers }, (_, i) => ({ index: i + 1, worker: undefined, readySince: undefined, crashes: 0, restartTimer: undefined }));
  }

  get liveWorkers(): number {
    return this.slots.filter((s) => s.worker).length;
  }

  /** Forks every worker; resolves when all listen, rejects (after the others stopped) when one fails first. */
  start(): Promise<{ url: string; store: string }> {
    const ready = new Promise<{ url: string; store: string }>((resolve, reject) => (this.readyWaiter = { resolve, reject }));
    for (const slot of this.slots) this.fork(slot);
    return ready;
  }

  /** Asks every worker to stop gracefully; resolves with the exit code for the primary once all are gone. */
  async stop(): Promise<number> {
    this.stopping = true;
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
      if (slot.worker?.isConnected()) slot.worker.send({ type: STOP } satisfies PrimaryMessage);
    }
    // Each worker has its own deadline (the grace period plus 5 s); this one is for a worker that hangs anyway.
    const force = setTimeout(() => {
      this.logger.error({ workers: this.liveWorkers }, 'workers did not stop in time; killing them');
      this.kill();
    }, this.config.shutdownGraceMs + 10_000);
    await this.allExited();
    clearTimeout(force);
    return this.failedStops === 0 ? 0 : 1;
  }

  kill(): void {
    for (const slot of this.slots) slot.worker?.process.kill('SIGKILL');
  }

  private allExited(): Promise<void> {
    if (this.liveWorkers === 0) return Promise.resolve();
    return new Promise((resolve) => this.allExitedWaiters.push(resolve));
  }

  private fork(slot: Slot): void {
    slot.restartTimer = undefined;
    slot.readySince = undefined;
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(slot.index) });
    slot.worker = worker;
    let startError: string | undefined;
    // A send to a worker that just died fails with an error event; its exit is handled below.
    worker.on('error', () => undefined);
    worker.on('message', (msg: WorkerMessage) => {
      if (msg?.type === READY) {
        slot.readySince = Date.now();
        if (!this.starting) this.logger.info({ worker: slot.index, pid: worker.process.pid }, 'replacement worker listening');
        this.onReady(msg);
      } else if (msg?.type === START_FAILED) {
        startError = msg.message;
      }
    });
    worker.on('exit', (code, signal) => {
      slot.worker = undefined;
      this.onExit(slot, { pid: worker.process.pid, code, signal, startError });
    });
  }

  private onReady(msg: { url: string; store: string }): void {
    if (this.stopping) return;
    this.firstReady ??= { url: msg.url, store: msg.store };
    if (this.starting && this.slots.every((s) => s.readySince !== undefined)) {
      this.starting = false;
      this.readyWaiter?.resolve(this.firstReady);
    }
  }

  private onExit(slot: Slot, exit: { pid: number | undefined; code: number | null; signal: string | null; startError: string | undefined }): void {
    const { pid, code, signal, startError } = exit;
    const wasReady = slot.readySince !== undefined;
    if (this.stopping) {
      if (code !== 0 && !this.startFailure) {
        this.failedStops++;
        this.logger.error({ worker: slot.index, pid, code, signal }, 'worker did not stop cleanly');
      }
    } else if (this.starting) {
      // Nothing to fall back on yet, and a second try would most likely fail the same way (port in use,
      // store unreachable): give up on the start.
      this.startFailure = new Error(startError ?? `worker ${slot.index} exited ${signal ? `on ${signal}` : `with code ${code}`} before it was listening`);
      this.logger.error({ worker: slot.index, pid, code, signal, err: startError }, 'a worker failed to start; stopping the others');
      void this.stop().then(() => this.readyWaiter?.reject(this.startFailure!));
    } else {
      if (wasReady && Date.now() - slot.readySince! >= STABLE_AFTER_MS) slot.crashes = 0;
      slot.crashes++;
      const delay = restartDelayMs(slot.crashes);
      this.logger.error(
        { worker: slot.index, pid, code, signal, err: startError, restartInMs: delay },
        wasReady ? 'worker exited unexpectedly; restarting it' : 'worker failed to start; trying again',
      );
      slot.restartTimer = setTimeout(() => this.fork(slot), delay);
    }
    if (this.liveWorkers === 0 && this.stopping) {
      for (const resolve of this.allExitedWaiters.splice(0)) resolve();
    }
  }
}
