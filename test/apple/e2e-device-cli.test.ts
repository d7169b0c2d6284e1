import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, MAIN } from '../cli/helpers.js';
import { tempDir } from '../pki/fixtures.js';
import { adeWorld, type AdeWorld } from '../helpers/apple-device.js';

/** `openenroll sim device-ca create` and `openenroll sim device enroll-ade`, as a person runs them, against a server over TLS. */

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('openenroll sim device (CLI)', () => {
  let dir: ReturnType<typeof tempDir>;
  let w: AdeWorld;

  beforeAll(async () => {
    await ensureBuilt();
    dir = tempDir('openenroll-sim-device-');
    const created = await run(['sim', 'device-ca', 'create', '--out', dir.file('ca')]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('OPENENROLL_APPLE_DEVICE_CA_FILE=');
    expect(fs.statSync(path.join(dir.dir, 'ca', 'device-ca-key.pem')).mode & 0o777).toBe(0o600);
    // The server trusts the CA the CLI made.
    w = await adeWorld({ env: { OPENENROLL_APPLE_DEVICE_CA_FILE: path.join(dir.dir, 'ca', 'device-ca.pem') } });
  }, 180_000);
  afterAll(async () => {
    await w?.close();
    dir?.cleanup();
  });

  it('refuses to overwrite a device CA', async () => {
    const again = await run(['sim', 'device-ca', 'create', '--out', path.join(dir.dir, 'ca')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds a device CA/);
  });

  it('enrolls an ADE device and prints each step; a device that does not trust the server says why', async () => {
    const serial = 'CLIXK8N8HG7Q';
    await w.addDevices([{ serial, model: 'iPhone 15', device_family: 'iPhone' }]);
    await w.profile({ displayName: 'CLI phones', requiresUserAuthentication: false, deviceNameTemplate: '{{DEVICETYPE}}-{{SERIAL}}' }, { isDefault: true });
    const url = w.abm.profile(w.abm.device(serial)!.profile_uuid!)!.url!;
    const trust = dir.file('tls.pem', w.tlsCertPem);

    const untrusted = await run(['sim', 'device', 'enroll-ade', '--url', url, '--serial', serial, '--device-ca-dir', path.join(dir.dir, 'ca')]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/the device refused \(network\)/);

    const res = await run(['sim', 'device', 'enroll-ade', '--url', url, '--serial', serial, '--model', 'iPhone15,4', '--device-ca-dir', path.join(dir.dir, 'ca'), '--trust', trust]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/MachineInfo\) → 200/);
    expect(res.stdout).toMatch(/SCEP PKIOperation \(POST\) → 200/);
    expect(res.stdout).toMatch(/check-in Authenticate → 200/);
    expect(res.stdout).toMatch(/check-in TokenUpdate → 200/);
    expect(res.stdout).toMatch(/Settings [0-9A-F-]+: Acknowledged/);
    expect(res.stdout).toContain(`device name "iPhone-${serial}"`);
    expect(await w.managedDevice(serial)).toMatchObject({ enrollmentProfileName: 'CLI phones', model: 'iPhone15,4', managedDeviceOwnerType: 'company' });
  });
});
