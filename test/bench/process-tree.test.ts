import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { processSample, ProcessTree } from '../../bench/lib/server.js';

/**
 * The bench's server meter with OPENENROLL_WORKERS: RSS and CPU summed over the process and its
 * children, and CPU that doesn't drop when a child exits. Linux only, as the meter is.
 */
describe.runIf(process.platform === 'linux')("the bench's process tree meter", () => {
  it('sums a parent and its busy child, and keeps the child\u2019s CPU seconds after it exits', async () => {
    // A parent that forks a child which burns 0.3 s of CPU and then idles a while; the parent reaps it and idles.
    const script = `
      const { spawn } = require('node:child_process');
      const burn = 'while (process.cpuUsage().user < 300000); setTimeout(() => {}, 3000)';
      const child = spawn(process.execPath, ['-e', burn], { stdio: 'ignore' });
      child.on('exit', () => console.log('reaped'));
      console.log('child ' + child.pid);
      setTimeout(() => {}, 20000);`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    parent.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const until = async (what: string, check: () => boolean) => {
      const deadline = Date.now() + 15_000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await until('the child', () => /child \d+/.test(out));
      const childPid = Number(/child (\d+)/.exec(out)![1]);
      const tree = new ProcessTree(parent.pid!);
      // While the child lives, idle after its work: both counted.
      await until('the child to burn its CPU', () => (processSample(childPid)?.cpuSeconds ?? 0) >= 0.3);
      const both = tree.sample()!;
      const parentAlone = processSample(parent.pid!)!;
      const child = processSample(childPid)!;
      expect(both.cpuSeconds).toBeCloseTo(parentAlone.cpuSeconds + child.cpuSeconds, 1);
      expect(both.rssBytes).toBeGreaterThan(parentAlone.rssBytes + child.rssBytes / 2);

      // Once reaped, the child's CPU seconds are in the parent's reaped-children figures.
      await until('the child to be reaped', () => out.includes('reaped'));
      const after = tree.sample()!;
      expect(after.cpuSeconds).toBeGreaterThanOrEqual(both.cpuSeconds);
      expect(after.rssBytes).toBeLessThan(both.rssBytes);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
