import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The master keyring: AES-256 keys by id, one of them current. Secrets are encrypted with the
 * current key and record its id, so older keys keep decrypting until rotation re-encrypts them.
 *
 * Accepted forms (environment value or file content):
 *   - a base64 32-byte key;
 *   - JSON {"current":"<id>","keys":{"<id>":"<base64 key>", ...}}.
 */

export interface KeyringData {
  current: string;
  keys: Record<string, string>;
}

export type KeySource =
  | { kind: 'env' }
  | { kind: 'file'; path: string; generated: boolean };

export class KeyringError extends Error {}

export class Keyring {
  private keys = new Map<string, Buffer>();
  private currentId: string;

  constructor(
    data: KeyringData,
    readonly source: KeySource,
  ) {
    this.currentId = data.current;
    this.load(data);
  }

  private load(data: KeyringData): void {
    const keys = new Map<string, Buffer>();
    for (const [id, b64] of Object.entries(data.keys)) {
      const key = Buffer.from(b64, 'base64');
      if (key.length !== 32) throw new KeyringError(`master key '${id}' is not 32 bytes of base64`);
      keys.set(id, key);
    }
    if (!keys.has(data.current)) throw new KeyringError(`the current master key '${data.current}' is not in the keyring`);
    this.keys = keys;
    this.currentId = data.current;
  }

  get currentKeyId(): string {
    return this.currentId;
  }

  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  current(): { id: string; key: Buffer } {
    return { id: this.currentId, key: this.keys.get(this.currentId)! };
  }

  /** The key with this id; re-reads a file keyring once if the id is unknown (rotated by another process). */
  get(id: string): Buffer | undefined {
    const k = this.keys.get(id);
    if (k || this.source.kind !== 'file') return k;
    try {
      this.load(parseKeyring(fs.readFileSync(this.source.path, 'utf8')));
    } catch {
      return undefined;
    }
    return this.keys.get(id);
  }

  toJSON(): KeyringData {
    return { current: this.currentId, keys: Object.fromEntries([...this.keys].map(([id, k]) => [id, k.toString('base64')])) };
  }
}

export function keyIdFor(key: Buffer): string {
  return crypto.createHash('sha256').update(key).digest('hex').slice(0, 12);
}

export function newKey(): { id: string; key: Buffer } {
  const key = crypto.randomBytes(32);
  return { id: keyIdFor(key), key };
}

export function parseKeyring(text: string): KeyringData {
  const t = text.trim();
  if (t.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(t);
    } catch {
      throw new KeyringError('the master keyring is not valid JSON');
    }
    const p = parsed as Partial<KeyringData>;
    if (typeof p.current !== 'string' || !p.keys || typeof p.keys !== 'object') {
      throw new KeyringError('the master keyring must look like {"current":"<id>","keys":{"<id>":"<base64>"}}');
    }
    return { current: p.current, keys: { ...p.keys } };
  }
  const key = Buffer.from(t, 'base64');
  if (key.length !== 32) throw new KeyringError('the master key must be 32 bytes, base64-encoded (openssl rand -base64 32)');
  const id = keyIdFor(key);
  return { current: id, keys: { [id]: key.toString('base64') } };
}

/** Writes a keyring file atomically with 0600 permissions. */
export function writeKeyringFile(file: string, data: KeyringData): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  fs.chmodSync(file, 0o600);
}

export interface KeyringOptions {
  masterKey?: string | undefined;
  masterKeyFile?: string | undefined;
  dataDir: string;
  /** Embedded mode (SQLite) may generate a key; a shared PostgreSQL deployment must be given one. */
  embedded: boolean;
}

export const DEFAULT_KEY_FILE = 'master.key';

export function loadKeyring(opts: KeyringOptions): Keyring {
  if (opts.masterKey) return new Keyring(parseKeyring(opts.masterKey), { kind: 'env' });
  const file = opts.masterKeyFile ?? path.join(opts.dataDir, DEFAULT_KEY_FILE);
  if (fs.existsSync(file)) {
    const mode = fs.statSync(file).mode & 0o077;
    if (mode !== 0) throw new KeyringError(`the master key file ${file} must not be readable by group or others (chmod 600)`);
    return new Keyring(parseKeyring(fs.readFileSync(file, 'utf8')), { kind: 'file', path: file, generated: false });
  }
  if (opts.masterKeyFile || !opts.embedded) {
    throw new KeyringError(
      opts.masterKeyFile
        ? `the master key file ${file} does not exist`
        : 'no master key: set OPENENROLL_MASTER_KEY or OPENENROLL_MASTER_KEY_FILE (every node sharing a PostgreSQL store needs the same key)',
    );
  }
  const { id, key } = newKey();
  const data = { current: id, keys: { [id]: key.toString('base64') } };
  writeKeyringFile(file, data);
  return new Keyring(data, { kind: 'file', path: file, generated: true });
}
