import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../helpers/pg-cluster.js';
import { pgUrl, testDialect } from '../helpers/store.js';
import { writeKeyringFile, newKey } from '../../src/secrets/keyring.js';

/** Helpers that run the built `openenroll` command as a real process, against either dialect. */

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const STAMP = path.join(ROOT, 'dist/.cli-test-build-stamp');
const LOCK = path.join(ROOT, 'dist/.cli-test-build-lock');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

function upToDate(): boolean {
  if (!fs.existsSync(MAIN) || !fs.existsSync(STAMP)) return false;
  const sources = Math.max(...['src', 'sim'].filter((d) => fs.existsSync(path.join(ROOT, d))).map((d) => newestMtime(path.join(ROOT, d))));
  return fs.statSync(STAMP).mtimeMs >= sources;
}

/**
 * `npm run build`, once for all test files and both vitest projects running in parallel: a lock
 * directory serialises the builds and a stamp skips them when nothing changed since.
 */
export async function ensureBuilt(): Promise<void> {
  fs.mkdirSync(path.dirname(LOCK), { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      break;
    } catch {
      // A lock left behind by a killed run is stale after a minute.
      try {
        if (Date.now() - fs.statSync(LOCK).mtimeMs > 60_000) fs.rmSync(LOCK, { recursive: true, force: true });
      } catch {
        /* released meanwhile */
      }
      if (Date.now() > deadline) throw new Error('timed out waiting for another test worker to build');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    if (upToDate()) return;
    const started = Date.now();
    const res = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    // Type errors elsewhere in the tree (tsc still emits) are the typecheck's business, not this test's.
    if (!fs.existsSync(MAIN)) throw new Error(`npm run build produced no ${MAIN}:\n${res.stdout}\n${res.stderr}`);
    if (res.status !== 0) console.warn(`npm run build reported errors (continuing with the emitted output):\n${res.stdout.slice(-2000)}`);
    fs.writeFileSync(STAMP, new Date(started).toISOString());
    fs.utimesSync(STAMP, new Date(started), new Date(started));
  } finally {
    fs.rmSync(LOCK, { recursive: true, force: true });
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A throwaway deployment: a data dir, and for PostgreSQL its own schema and a key file. */
export interface Deployment {
  dir: string;
  env: Record<string, string>;
  dialect: 'sqlite' | 'postgres';
  pgSchema?: string;
  /** Every row of every table, as text (to look for secrets that must not be there). */
  dumpStore(): Promise<string>;
  cleanup(): Promise<void>;
}

export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? os.tmpdir(), OPENENROLL_JOBS_POLL_MS: '200' };
  if (process.env.TMPDIR) env.TMPDIR = process.env.TMPDIR;
  return env;
}

export async function createDeployment(opts: { masterKeyFile?: boolean } = {}): Promise<Deployment> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'openenroll-cli-'));
  const dataDir = path.join(dir, 'data');
  const env: Record<string, string> = { ...baseEnv(), OPENENROLL_DATA_DIR: dataDir };
  if (testDialect() === 'sqlite') {
    return {
      dir,
      env,
      dialect: 'sqlite',
      async dumpStore() {
        // The WAL and shared-memory files hold recent writes until a checkpoint.
        return fs
          .readdirSync(dataDir)
          .filter((f) => f.startsWith('openenroll.db'))
          .map((f) => fs.readFileSync(path.join(dataDir, f)).toString('latin1'))
          .join('\n');
      },
      async cleanup() {
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `cli_${crypto.randomBytes(6).toString('hex')}`;
  const url = pgUrl();
  env.DATABASE_URL = url;
  env.OPENENROLL_PG_SCHEMA = schema;
  if (opts.masterKeyFile !== false) {
    // A shared store must be given its key; a file keyring can be rotated in place.
    const keyFile = path.join(dir, 'master.key');
    const { id, key } = newKey();
    writeKeyringFile(keyFile, { current: id, keys: { [id]: key.toString('base64') } });
    env.OPENENROLL_MASTER_KEY_FILE = keyFile;
  }
  const query = async (text: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await client.query(text);
    } finally {
      await client.end();
    }
  };
  return {
    dir,
    env,
    dialect: 'postgres',
    pgSchema: schema,
    async dumpStore() {
      const tables = await query(`select table_name from information_schema.tables where table_schema = '${schema}'`);
      const parts: string[] = [];
      for (const { table_name } of tables.rows as { table_name: string }[]) {
        parts.push(JSON.stringify((await query(`select * from "${schema}"."${table_name}"`)).rows));
      }
      return parts.join('\n');
    },
    async cleanup() {
      await query(`drop schema if exists "${schema}" cascade`);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface Server {
  proc: ChildProcess;
  url: string;
  port: number;
  /** Everything the process wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Milliseconds from spawn until /healthz answered and the start was logged. */
  readyMs: number;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Spawns `openenroll serve` on a free port and waits until /healthz answers. */
export async function startServe(env: Record<string, string>, timeoutMs = 15_000): Promise<Server> {
  const port = await freePort();
  const started = performance.now();
  const proc = spawn(process.execPath, [MAIN, 'serve'], {
    env: { ...env, PORT: String(port), HOST: '127.0.0.1' },
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (done) throw new Error(`openenroll serve exited early:\n${out}\n${err}`);
    if (performance.now() - started > timeoutMs) {
      proc.kill('SIGKILL');
      throw new Error(`openenroll serve did not answer within ${timeoutMs} ms:\n${out}\n${err}`);
    }
    try {
      // Ready once it answers and has logged that it listens (with its start-up time).
      const res = await fetch(`${url}/healthz`);
      if (res.ok && out.includes('"OpenEnroll listening"')) break;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const readyMs = performance.now() - started;
  return {
    proc,
    url,
    port,
    stdout: () => out,
    stderr: () => err,
    readyMs,
    exited,
    async stop(signal = 'SIGTERM') {
      if (!done) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export const TOKEN = /oe_[a-z0-9]{16}_[A-Za-z0-9_-]{43}/g;

/** The secret part of an `oe_<id>_<secret>` token. */
export const secretOf = (token: string) => token.split('_').slice(2).join('_');

export async function api(server: Pick<Server, 'url'>, token: string | null, method: string, urlPath: string, body?: unknown) {
  const res = await fetch(`${server.url}${urlPath}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/**
 * Sends a POST whose body arrives in two parts, calling `between` after the first (a request in
 * flight), then the rest `afterMs` later.
 */
export function slowPost(server: Pick<Server, 'url'>, token: string, body: object, between: () => void | Promise<void>, afterMs = 0): Promise<{ status: number; body: string }> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${server.url}/beta/deviceManagement/roleScopeTags`,
      { method: 'POST', agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': String(payload.length) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.write(payload.subarray(0, 5));
    // Give the server time to route the request and authenticate it before `between`.
    setTimeout(() => {
      Promise.resolve(between()).then(() => setTimeout(() => req.end(payload.subarray(5)), afterMs), reject);
    }, 150);
  });
}
