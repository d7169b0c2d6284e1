import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { ensureBuilt, MAIN } from '../cli/helpers.js';
import { testDialect } from '../helpers/store.js';
import { credentialsFromP7m, Dep, http, tokenRecipient } from './abm-helpers.js';

const post = (url: string, body?: unknown) => http(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

describe('ABM simulator: the /_sim/ control surface', () => {
  let sim: AbmSimulator;
  beforeAll(async () => {
    sim = await startAbmSimulator();
  });
  afterAll(() => sim.close());

  it('does what an ABM admin does, over HTTP', async () => {
    const c = `${sim.url}/_sim`;
    const help = await http(`${c}/`);
    expect(help.status).toBe(200);
    expect(help.json.endpoints.join('\n')).toMatch(/public-key/);

    const created = await post(`${c}/servers`, { name: 'OpenEnroll' });
    expect(created.status).toBe(201);
    const uuid = created.json.serverUuid as string;
    expect((await http(`${c}/servers/${uuid}/public-key`, { method: 'PUT', body: tokenRecipient().certPem })).status).toBe(204);
    const token = await post(`${c}/servers/${uuid}/token`, { expiresAt: '2030-01-01T00:00:00Z' });
    expect(token.status).toBe(200);
    expect(token.headers.get('content-type')).toMatch(/^application\/pkcs7-mime/);
    const creds = credentialsFromP7m(token.text, tokenRecipient().keyPem);

    expect((await post(`${c}/devices`, { devices: [{ serial_number: 'CTL1', model: 'iPad mini' }, { serial_number: 'CTL2' }], orderNumber: 'PO-9' })).status).toBe(201);
    const gen = await post(`${c}/devices/generate`, { count: 3, prefix: 'GEN', serverUuid: uuid });
    expect(gen.json.count).toBe(3);
    expect((await post(`${c}/servers/${uuid}/devices`, { orderNumber: 'PO-9' })).json.assigned).toEqual(['CTL1', 'CTL2']);
    expect((await post(`${c}/servers/${uuid}/devices`, { csv: 'CTL1\nNOPE\n' })).json.error).toMatch(/NOPE/);

    const dep = new Dep(sim, creds);
    expect((await dep.fetchAll()).serials).toHaveLength(5);

    const profile = await dep.call('POST', '/profile', { profile_name: 'p', url: 'https://mdm.example.com/enroll', devices: ['CTL1'] });
    expect((await http(`${c}/devices/CTL1`)).json).toMatchObject({ serial_number: 'CTL1', serverUuid: uuid, profile_status: 'assigned', device_family: 'iPad' });
    expect((await post(`${c}/devices/CTL1/push`)).status).toBe(204);
    expect((await http(`${c}/profiles/${profile.json.profile_uuid}`)).json.profile_name).toBe('p');
    expect((await http(`${c}/profiles/NOPE`)).status).toBe(404);
    expect((await http(`${c}/devices/NOPE`)).status).toBe(404);

    expect((await post(`${c}/devices/unassign`, { serials: ['CTL2'] })).status).toBe(204);
    expect((await post(`${c}/devices/release`, { serials: [gen.json.serials[0]] })).status).toBe(204);
    expect((await post(`${c}/assignment-outcomes`, { serials: ['CTL1'], outcome: 'FAILED' })).status).toBe(204);
    expect((await dep.call('POST', '/profile/devices', { profile_uuid: profile.json.profile_uuid, devices: ['CTL1'] })).json.devices.CTL1).toBe('FAILED');

    expect((await http(`${c}/terms`, { method: 'PUT', body: JSON.stringify({ signed: false }) })).status).toBe(204);
    expect((await dep.call('GET', '/account')).text).toBe('T_C_NOT_SIGNED');
    await http(`${c}/terms`, { method: 'PUT', body: JSON.stringify({ signed: true }) });

    const { cursor } = await dep.fetchAll();
    expect((await post(`${c}/cursors/expire`)).status).toBe(204);
    expect((await dep.call('POST', '/devices/sync', { cursor })).text).toBe('EXPIRED_CURSOR');
    expect((await post(`${c}/sessions/expire`)).status).toBe(204);
    expect((await dep.call('GET', '/account')).status).toBe(401);

    const state = await http(`${c}/state`);
    expect(state.json).toMatchObject({ terms_signed: true, devices: 4, servers: [{ server_uuid: uuid, server_name: 'OpenEnroll', public_key: true, token: true, token_expiry: '2030-01-01T00:00:00Z', devices: 3 }] });
    const requests = await http(`${c}/requests`);
    expect(requests.json.some((r: { path: string }) => r.path === '/session')).toBe(true);
    expect(requests.json.some((r: { path: string }) => r.path.startsWith('/_sim'))).toBe(false);
  });

  it('answers bad control requests with a JSON error', async () => {
    const c = `${sim.url}/_sim`;
    expect(await post(`${c}/servers`, {})).toMatchObject({ status: 400, json: { error: 'name must be a string' } });
    expect((await http(`${c}/servers`, { method: 'POST', body: '{nope' })).status).toBe(400);
    expect((await post(`${c}/servers/NOPE/token`)).status).toBe(404);
    expect((await http(`${c}/nothing`)).status).toBe(404);
    expect((await post(`${c}/devices/generate`, { count: -1 })).status).toBe(400);
  });
});

describe.runIf(testDialect() === 'sqlite')('openenroll sim abm', () => {
  beforeAll(ensureBuilt, 180_000);

  it('starts the simulator, prints its URL and how to use it, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [MAIN, 'sim', 'abm', '--port', '0', '--devices', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 20_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/[^\s]+)/.exec(out);
        if (m && /curl .*\/_sim\//.test(out)) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    try {
      expect(out).toMatch(/MDM server "OpenEnroll": [0-9A-F]{32} \(5 device\(s\) assigned\)/);
      expect(out).toMatch(/public-key/);
      const state = await http(`${url}/_sim/state`);
      expect(state.json.servers).toMatchObject([{ server_name: 'OpenEnroll', devices: 5 }]);
    } finally {
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 60_000);

  it('refuses a bad --devices value', async () => {
    const child = spawn(process.execPath, [MAIN, 'sim', 'abm', '--devices', 'many'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).not.toBe(0);
    expect(err).toMatch(/whole number/);
  });
});
