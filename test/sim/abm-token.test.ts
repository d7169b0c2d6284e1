import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { credentialsFromP7m, Dep } from './abm-helpers.js';

const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('ABM simulator: the server token (.p7m)', () => {
  let dir: string;
  let sim: AbmSimulator;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abm-token-'));
    sim = await startAbmSimulator();
  });
  afterAll(async () => {
    await sim.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const file = (name: string) => path.join(dir, name);

  it('decrypts with openssl smime to the MIME-wrapped OAuth JSON, and the tokens open a session', async () => {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('key.pem'), '-out', file('cert.pem'), '-subj', '/CN=openenroll-dep', '-days', '1');
    const { serverUuid } = sim.createMdmServer('OpenEnroll');
    sim.uploadPublicKey(serverUuid, fs.readFileSync(file('cert.pem'), 'utf8'));
    const expiresAt = new Date('2027-06-30T12:00:00Z');
    const p7m = sim.downloadServerToken(serverUuid, { expiresAt });
    fs.writeFileSync(file('token.p7m'), p7m);

    const headers = p7m.slice(0, p7m.indexOf('\r\n\r\n'));
    expect(headers.split('\r\n')).toEqual([
      'Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="smime.p7m"',
      'Content-Description: S/MIME Encrypted Message',
    ]);

    const decrypted = openssl('smime', '-decrypt', '-in', file('token.p7m'), '-recip', file('cert.pem'), '-inkey', file('key.pem'));
    expect(decrypted).toMatch(/^Content-Type: text\/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n-----BEGIN MESSAGE-----\n/);
    const json = JSON.parse(/-----BEGIN MESSAGE-----\n(.*)\n-----END MESSAGE-----/s.exec(decrypted)![1]!);
    expect(Object.keys(json)).toEqual(['consumer_key', 'consumer_secret', 'access_token', 'access_secret', 'access_token_expiry']);
    expect(json.access_token_expiry).toBe('2027-06-30T12:00:00Z');

    // RSA PKCS#1 v1.5 key transport to our certificate, AES-256-CBC content encryption.
    const structure = openssl('cms', '-cmsout', '-print', '-in', file('token.p7m'));
    expect(structure).toMatch(/rsaEncryption/);
    expect(structure).toMatch(/aes-256-cbc/);

    // The same file through the simulator's own decryptor, then used for real.
    const creds = credentialsFromP7m(p7m, fs.readFileSync(file('key.pem'), 'utf8'));
    expect(creds.consumerKey).toBe(json.consumer_key);
    const dep = new Dep(sim, creds);
    expect((await dep.signedSession()).status).toBe(200);
  });

  it('refuses public keys ABM would refuse, and a download before any upload', () => {
    const { serverUuid } = sim.createMdmServer('Picky');
    expect(() => sim.downloadServerToken(serverUuid)).toThrow(/public key/);
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('ec-key.pem'), '-out', file('ec.pem'), '-subj', '/CN=ec', '-days', '1');
    expect(() => sim.uploadPublicKey(serverUuid, fs.readFileSync(file('ec.pem'), 'utf8'))).toThrow(/RSA|can't be used/);
    openssl('req', '-x509', '-newkey', 'rsa:1024', '-nodes', '-keyout', file('small-key.pem'), '-out', file('small.pem'), '-subj', '/CN=small', '-days', '1');
    expect(() => sim.uploadPublicKey(serverUuid, fs.readFileSync(file('small.pem'), 'utf8'))).toThrow(/2048/);
    expect(() => sim.uploadPublicKey(serverUuid, fs.readFileSync(file('key.pem'), 'utf8'))).toThrow(/X\.509 certificate/);
    expect(() => sim.uploadPublicKey('NOPE', fs.readFileSync(file('cert.pem'), 'utf8'))).toThrow(/no MDM server/);
    expect(() => sim.createMdmServer('Picky')).toThrow(/already exists/);
  });
});
