import { describe, expect, it } from 'vitest';
import { runBench, SCALES } from '../../bench/run.js';
import type { ScenarioResult } from '../../bench/lib/report.js';
import { ensureBuilt } from '../cli/helpers.js';
import { pgUrl, testDialect } from '../helpers/store.js';

/**
 * `npm run bench` at smoke scale against this project's store: every scenario runs end to end on the
 * built server with the simulators, and what it did is checked (devices synced, enrolled, polled,
 * commanded and acknowledged, counts right). Speed is never asserted here (see docs/performance.md).
 */
describe('bench at smoke scale', () => {
  it('runs every scenario to the end with the right counts', async () => {
    const store = testDialect();
    const lines: string[] = [];
    const run = await runBench({
      stores: [store],
      only: ['a', 'b', 'c', 'd', 'e'],
      scale: 'smoke',
      outDir: undefined,
      cpuProfileDir: undefined,
      serverEnv: {},
      ...(store === 'postgres' ? { postgresUrl: pgUrl() } : {}),
      build: ensureBuilt,
      log: (line) => lines.push(line),
    });
    const scale = SCALES.smoke;
    const storeRun = run.runs.find((r) => r.store === store)!;
    expect(storeRun.errors, lines.join('\n')).toEqual([]);
    const scenario = (runs: typeof run.runs, id: ScenarioResult['id']) => runs.flatMap((r) => r.scenarios).find((s) => s.id === id)!;

    const e = scenario(run.runs, 'e');
    expect(e.details.decisions).toBeGreaterThan(0);
    expect(e.details.allowedShare).toBeGreaterThan(0);
    expect(e.details.allowedShare).toBeLessThan(1);

    const a = scenario([storeRun], 'a');
    expect(a.details).toMatchObject({ devices: scale.ingestDevices, syncedDeviceCount: scale.ingestDevices });
    expect(a.ceiling?.value).toBeGreaterThan(0);
    expect(storeRun.ceilings.find((c) => c.id === 'raw-insert')?.details).toMatchObject({ rows: scale.rawInsertRows });

    const b = scenario([storeRun], 'b');
    expect(b.details).toMatchObject({ devices: scale.enrollDevices });
    expect(b.latency?.count).toBe(scale.enrollDevices);
    // Per device at least MachineInfo, GetCACaps, GetCACert, PKIOperation, Authenticate, TokenUpdate and the first poll.
    expect(Number(b.details.httpRequests)).toBeGreaterThanOrEqual(7 * scale.enrollDevices);

    const c = scenario([storeRun], 'c');
    expect(c.details.devices).toBe(scale.enrollDevices);
    expect(Number(c.details.requests)).toBeGreaterThan(0);
    expect(c.latency?.count).toBe(c.details.requests);

    const d = scenario([storeRun], 'd');
    expect(d.details).toMatchObject({
      devices: scale.fanoutDevices,
      managedDevices: scale.fanoutDevices,
      serverAcknowledged: scale.fanoutDevices,
      devicePushErrors: 0,
    });
    // A device woken for something else meanwhile may fetch its command before its own push: no exact count.
    expect(Number(d.details.pushesAccepted)).toBeGreaterThan(0);

    expect(storeRun.ceilings.find((x) => x.id === 'bare-route')?.value).toBeGreaterThan(0);
    expect(storeRun.serverPeakRssMb).toBeGreaterThan(0);
    // Targets are for the full scale only.
    expect(run.targets.every((t) => t.met === null)).toBe(true);
  }, 120_000);
});
