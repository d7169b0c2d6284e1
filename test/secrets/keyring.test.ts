import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { keyIdFor, Keyring, KeyringError, loadKeyring, parseKeyring, writeKeyringFile } from '../../src/secrets/keyring.js';
import { decryptSecret, encryptSecret } from '../../src/secrets/secret-store.js';
import { openKeyring } from '../../src/server/start.js';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'openenroll-keyring-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const b64 = (n: number) => crypto.randomBytes(n).toString('base64');
const modeOf = (f: string) => fs.statSync(f).mode & 0o777;

describe('keyring parsing', () => {
  it('accepts a base64 32-byte key and names it by its hash', () => {
    const key = crypto.randomBytes(32);
    const data = parseKeyring(`  ${key.toString('base64')}\n`);
    expect(data.current).toBe(keyIdFor(key));
    expect(Buffer.from(data.keys[data.current]!, 'base64').equals(key)).toBe(true);
  });

  it('accepts base64url too (the same key)', () => {
    const key = crypto.randomBytes(32);
    expect(parseKeyring(key.toString('base64url')).current).toBe(keyIdFor(key));
  });

  it('accepts a JSON keyring with several keys', () => {
    const k = new Keyring(parseKeyring(JSON.stringify({ current: 'b', keys: { a: b64(32), b: b64(32) } })), { kind: 'env' });
    expect(k.currentKeyId).toBe('b');
    expect(k.keyIds.sort()).toEqual(['a', 'b']);
    expect(k.get('a')).toHaveLength(32);
  });

  it.each([
    ['a 16-byte key', b64(16)],
    ['a 31-byte key', b64(31)],
    ['a 33-byte key', b64(33)],
    ['a 64-byte key', b64(64)],
    ['hex instead of base64', crypto.randomBytes(32).toString('hex')],
    // Buffer.from(…,'base64') would skip the junk characters and find 32 bytes.
    ['base64 with junk inside', `${b64(32).slice(0, 20)}!!${b64(32).slice(20)}`],
    ['an empty value', ''],
  ])('refuses %s', (_name, text) => {
    expect(() => parseKeyring(text)).toThrow(/32 bytes, base64/);
  });

  it.each([
    ['broken JSON', '{"current":', /not valid JSON/],
    ['no current', JSON.stringify({ keys: { a: b64(32) } }), /must look like/],
    ['keys as an array', JSON.stringify({ current: 'a', keys: [b64(32)] }), /must look like/],
    ['current not in keys', JSON.stringify({ current: 'x', keys: { a: b64(32) } }), /current master key 'x' is not in the keyring/],
    ['a short key', JSON.stringify({ current: 'a', keys: { a: b64(16) } }), /'a' is not 32 bytes/],
    ['a key that is not a string', JSON.stringify({ current: 'a', keys: { a: 42 } }), /'a' is not 32 bytes/],
    // Key ids are written into the dot-separated ciphertext format.
    ['a key id with a dot', JSON.stringify({ current: 'a.b', keys: { 'a.b': b64(32) } }), /id 'a.b' must be/],
  ])('refuses a JSON keyring with %s', (_name, text, message) => {
    expect(() => new Keyring(parseKeyring(text), { kind: 'env' })).toThrow(message);
  });

  it('names the environment variable when the key in it is bad', () => {
    expect(() => loadKeyring({ masterKey: b64(16), dataDir: tmpDir(), embedded: true })).toThrow(/^OPENENROLL_MASTER_KEY: .*32 bytes/);
  });
});

describe('the master key file', () => {
  it('is generated on first start in embedded mode with mode 0600, then reused', () => {
    const dataDir = tmpDir();
    const first = loadKeyring({ dataDir, embedded: true });
    const file = path.join(dataDir, 'master.key');
    expect(first.source).toEqual({ kind: 'file', path: file, generated: true });
    expect(modeOf(file)).toBe(0o600);
    const again = loadKeyring({ dataDir, embedded: true });
    expect(again.source).toMatchObject({ generated: false });
    expect(again.currentKeyId).toBe(first.currentKeyId);
    expect(again.get(first.currentKeyId)!.equals(first.current().key)).toBe(true);
  });

  it('is 0600 even under a permissive umask', () => {
    const old = process.umask(0o000);
    try {
      const dataDir = tmpDir();
      loadKeyring({ dataDir, embedded: true });
      expect(modeOf(path.join(dataDir, 'master.key'))).toBe(0o600);
      writeKeyringFile(path.join(dataDir, 'other.key'), parseKeyring(b64(32)));
      expect(modeOf(path.join(dataDir, 'other.key'))).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });

  it.each([0o640, 0o604, 0o644, 0o660, 0o602])('is refused when its mode is %o (group or others can read or write it)', (mode) => {
    const dataDir = tmpDir();
    const file = path.join(dataDir, 'master.key');
    fs.writeFileSync(file, b64(32), { mode: 0o600 });
    fs.chmodSync(file, mode);
    expect(() => loadKeyring({ dataDir, embedded: true })).toThrow(/must not be readable by group or others \(chmod 600\)/);
    expect(() => loadKeyring({ masterKeyFile: file, dataDir, embedded: false })).toThrow(KeyringError);
  });

  it('accepts a 0400 file holding a base64 key (OPENENROLL_MASTER_KEY_FILE)', () => {
    const dataDir = tmpDir();
    const file = path.join(dataDir, 'secret-key');
    const key = crypto.randomBytes(32);
    fs.writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o400 });
    const k = loadKeyring({ masterKeyFile: file, dataDir, embedded: false });
    expect(k.currentKeyId).toBe(keyIdFor(key));
  });

  it('names the file when its content is bad', () => {
    const dataDir = tmpDir();
    const file = path.join(dataDir, 'master.key');
    fs.writeFileSync(file, 'not a key', { mode: 0o600 });
    expect(() => loadKeyring({ dataDir, embedded: true })).toThrow(`${file}: the master key must be 32 bytes`);
  });

  it('is never generated for a configured file that does not exist', () => {
    const dataDir = tmpDir();
    const file = path.join(dataDir, 'missing.key');
    expect(() => loadKeyring({ masterKeyFile: file, dataDir, embedded: true })).toThrow(`the master key file ${file} does not exist`);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('must be given in PostgreSQL mode: starting without one fails with a clear error and writes nothing', () => {
    const dataDir = path.join(tmpDir(), 'data');
    const config = loadConfig({ OPENENROLL_DATA_DIR: dataDir, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(() => openKeyring(config)).toThrow(/no master key: set OPENENROLL_MASTER_KEY or OPENENROLL_MASTER_KEY_FILE/);
    expect(fs.existsSync(path.join(dataDir, 'master.key'))).toBe(false);
  });

  it('prefers OPENENROLL_MASTER_KEY over a key file', () => {
    const dataDir = tmpDir();
    loadKeyring({ dataDir, embedded: true });
    const key = crypto.randomBytes(32);
    const k = loadKeyring({ masterKey: key.toString('base64'), dataDir, embedded: true });
    expect(k.source.kind).toBe('env');
    expect(k.currentKeyId).toBe(keyIdFor(key));
  });

  it('creates the embedded data dir private to the user', () => {
    const dataDir = path.join(tmpDir(), 'fresh');
    openKeyring(loadConfig({ OPENENROLL_DATA_DIR: dataDir }));
    expect(modeOf(dataDir) & 0o077).toBe(0);
  });
});

describe('a keyring read from a file', () => {
  it('follows a rotation made by another process: unknown key ids and the new current key', () => {
    const dataDir = tmpDir();
    const mine = loadKeyring({ dataDir, embedded: true });
    const oldId = mine.currentKeyId;
    const before = encryptSecret(mine, Buffer.from('old secret'), 'aad');

    // Another process (openenroll keys rotate-master) adds a key and makes it current.
    const file = path.join(dataDir, 'master.key');
    const other = loadKeyring({ dataDir, embedded: true });
    const next = parseKeyring(b64(32));
    writeKeyringFile(file, { current: next.current, keys: { ...other.toJSON().keys, ...next.keys } });
    const theirs = loadKeyring({ dataDir, embedded: true });
    const after = encryptSecret(theirs, Buffer.from('new secret'), 'aad');
    expect(after.keyId).toBe(next.current);

    // This process meets the new key id and reloads; old ciphertexts still decrypt.
    expect(decryptSecret(mine, after.ciphertext, 'aad').toString()).toBe('new secret');
    expect(decryptSecret(mine, before.ciphertext, 'aad').toString()).toBe('old secret');
    // New secrets it writes use the new current key, not the old one.
    expect(mine.currentKeyId).toBe(next.current);
    expect(encryptSecret(mine, Buffer.from('x'), 'aad').keyId).toBe(next.current);
    expect(mine.keyIds).toContain(oldId);
  });

  it('keeps its keys when the file turns unreadable or invalid', () => {
    const dataDir = tmpDir();
    const k = loadKeyring({ dataDir, embedded: true });
    const id = k.currentKeyId;
    fs.writeFileSync(path.join(dataDir, 'master.key'), '{ half written', { mode: 0o600 });
    expect(k.get('unknown')).toBeUndefined();
    expect(k.currentKeyId).toBe(id);
    expect(k.current().key).toHaveLength(32);
    fs.rmSync(path.join(dataDir, 'master.key'));
    expect(k.currentKeyId).toBe(id);
  });

  it('does not re-read an environment keyring', () => {
    const k = new Keyring(parseKeyring(b64(32)), { kind: 'env' });
    expect(k.get('other')).toBeUndefined();
  });
});
