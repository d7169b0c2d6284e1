import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertificate } from '../../src/pki/certificates.js';
import { MINUTE } from '../../src/shared/time.js';
import { tempDir } from '../pki/fixtures.js';
import { scepHarness, type ScepHarness } from './scep-support.js';

/**
 * An independent SCEP client: certmonger (Debian's `certmonger` package), whose daemon makes the
 * key, the CSR with the challenge and the PKCSReq itself and reads our CertRep with OpenSSL. It runs
 * on a private D-Bus session bus (dbus-run-session) with its state in a temporary directory.
 *
 * certmonger treats a lone GetCACert certificate as the RA and verifies responses only against a
 * CA it is given (-N); the CA is pinned that way, as an admin does with Apple's CAFingerprint.
 */

const run = promisify(execFile);
const SCEP_SUBMIT = ['/usr/lib/certmonger/scep-submit', '/usr/libexec/certmonger/scep-submit'].find((p) => fs.existsSync(p));
const onPath = (bin: string) => (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, bin)));
const missing = [SCEP_SUBMIT ? undefined : 'scep-submit', ...['certmonger', 'getcert', 'dbus-run-session'].filter((b) => !onPath(b) && !fs.existsSync(`/usr/sbin/${b}`))].filter(Boolean);

if (missing.length > 0) {
  console.warn(`SCEP interop tests skipped: ${missing.join(', ')} not installed (apt-get install certmonger; .ci/run installs it).`);
}

describe.skipIf(missing.length > 0)('SCEP with an independent client (certmonger)', () => {
  let h: ScepHarness;
  let url: string;
  const tmp = tempDir('openenroll-certmonger-');
  let caFile: string;
  beforeAll(async () => {
    // certmonger checks our certificates against the real clock: start the app's clock there.
    h = await scepHarness({ start: new Date().toISOString() });
    const address = await h.t.app.server.listen({ port: 0, host: '127.0.0.1' });
    url = `${address}/scep/${h.tenantId}/pkiclient.exe`;
    caFile = tmp.file('ca.pem', await h.caPem());
    for (const d of ['requests', 'cas', 'local', 'tmp']) fs.mkdirSync(path.join(tmp.dir, d), { recursive: true });
  });
  afterAll(async () => {
    await h.close();
    tmp.cleanup();
  });

  /** One certmonger session: a daemon on a private bus, the SCEP CA, one request waited for. */
  async function certmonger(name: string, challenge: string): Promise<{ output: string; rc: number; status: string; caError: string; certFile: string }> {
    const certFile = path.join(tmp.dir, `${name}.crt`);
    const keyFile = path.join(tmp.dir, `${name}.key`);
    const script = `
      set -u
      # The first getcert call starts the daemon through D-Bus activation (certmonger-session), with this
      # environment; the CA stays in the state directory, so later sessions find it already added.
      getcert add-scep-ca -s -c OE -u "$SCEP_URL" -N "$CA_FILE" >/dev/null 2>&1 || true
      getcert request -s -c OE -I "${name}" -f "${certFile}" -k "${keyFile}" -L "$CHALLENGE" -w >/dev/null 2>&1
      echo "rc=$?"
      getcert list -s -i "${name}"
      exit 0
    `;
    const env = {
      PATH: `${process.env.PATH ?? ''}:/usr/sbin:/usr/bin`,
      HOME: tmp.dir,
      STATE: tmp.dir,
      SCEP_URL: url,
      CA_FILE: caFile,
      CHALLENGE: challenge,
      CERTMONGER_CONFIG_DIR: tmp.dir,
      CERTMONGER_REQUESTS_DIR: path.join(tmp.dir, 'requests'),
      CERTMONGER_CAS_DIR: path.join(tmp.dir, 'cas'),
      CERTMONGER_LOCAL_CA_DIR: path.join(tmp.dir, 'local'),
      CERTMONGER_TMPDIR: path.join(tmp.dir, 'tmp'),
    };
    // Asynchronous: the server answering certmonger runs in this process.
    const { stdout } = await run('dbus-run-session', ['--', 'bash', '-c', script], { env, timeout: 60_000 });
    return {
      output: stdout,
      rc: Number(/rc=(\d+)/.exec(stdout)?.[1] ?? -1),
      status: /status: (\S+)/.exec(stdout)?.[1] ?? '',
      caError: /ca-error: (.*)/.exec(stdout)?.[1] ?? '',
      certFile,
    };
  }

  it('obtains a certificate with a valid challenge', async () => {
    const intent = await h.intent();
    const { challenge } = await h.profile(intent);
    const res = await certmonger('valid', challenge);
    expect(res, JSON.stringify(res)).toMatchObject({ rc: 0, status: 'MONITORING' });
    const cert = parseCertificate(fs.readFileSync(res.certFile));
    expect(cert.subject.text).toBe(`O=OpenEnroll, CN=${intent.id}`);
    const binding = await h.apple.scep.identities.identify(h.t.store.db, h.tenantId, cert.der, h.clock.now());
    expect(binding?.intentId).toBe(intent.id);

    // The same challenge again: refused, as certmonger reports it.
    const before = await h.counts();
    const reused = await certmonger('reused', challenge);
    expect(reused).toMatchObject({ rc: 2, status: 'CA_REJECTED' });
    expect(reused.caError).toMatch(/not permitted/);
    expect(await h.counts()).toEqual(before);
  });

  it('is refused with a stale (16-minute-old) challenge, and nothing is written', async () => {
    const { challenge } = await h.profile(await h.intent());
    h.clock.advance(16 * MINUTE);
    const before = await h.counts();
    const res = await certmonger('stale', challenge);
    expect(res).toMatchObject({ rc: 2, status: 'CA_REJECTED' });
    expect(fs.existsSync(res.certFile)).toBe(false);
    expect(await h.counts()).toEqual(before);
  });
});
