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
  /** Identity of the key file as last read (inode, size, mtime), to notice a rotation by another process. */
  private fileStamp: string | undefined;

  constructor(
    data: KeyringData,
    readonly source: KeySource,
  ) {
    this.currentId = data.current;
    this.load(data);
    if (source.kind === 'file') {
      try {
        this.fileStamp = stampOf(source.path);
      } catch {
        this.fileStamp = undefined;
      }
    }
  }

  private load(data: KeyringData): void {
    const keys = new Map<string, Buffer>();
    for (const [id, b64] of Object.entries(data.keys)) {
      if (!KEY_ID.test(id)) throw new KeyringError(`master key id '${id}' must be 1-64 letters, digits, '_' or '-'`);
      const key = typeof b64 === 'string' ? decodeKey(b64) : undefined;
      if (!key) throw new KeyringError(`master key '${id}' is not 32 bytes of base64`);
      keys.set(id, key);
    }
    if (!keys.has(data.current)) throw new KeyringError(`the current master key '${data.current}' is not in the keyring`);
    this.keys = keys;
    this.currentId = data.current;
  }

  /** Re-reads a file keyring; keeps the keys it has when the file can't be read or parsed. */
  private reload(): void {
    if (this.source.kind !== 'file') return;
    try {
      const stamp = stampOf(this.source.path);
      this.load(parseKeyring(fs.readFileSync(this.source.path, 'utf8')));
      this.fileStamp = stamp;
    } catch {
      /* a half-deployed or unreadable file must not take the running keys away */
    }
  }

  /** A file keyring follows a rotation done by another process (openenroll keys rotate-master). */
  private refreshIfChanged(): void {
    if (this.source.kind !== 'file') return;
    let stamp: string | undefined;
    try {
      stamp = stampOf(this.source.path);
    } catch {
      return;
    }
    if (stamp !== this.fileStamp) this.reload();
  }

  get currentKeyId(): string {
    this.refreshIfChanged();
    return this.currentId;
  }

  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  current(): { id: string; key: Buffer } {
    this.refreshIfChanged();
    return { id: this.currentId, key: this.keys.get(this.currentId)! };
  }

  /** The key with this id; re-reads a file keyring once if the id is unknown (rotated by another process). */
  get(id: string): Buffer | undefined {
    const k = this.keys.get(id);
    if (k || this.source.kind !== 'file') return k;
    this.reload();
    return this.keys.get(id);
  }

  toJSON(): KeyringData {
    return { current: this.currentId, keys: Object.fromEntries([...this.keys].map(([id, k]) => [id, k.toString('base64')])) };
  }
}

// Ids appear in the dot-separated ciphertext format, so no dots.
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

function stampOf(file: string): string {
  const st = fs.statSync(file);
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

/** Strict base64 or base64url of exactly 32 bytes; anything else (Buffer.from is lenient) is refused. */
function decodeKey(text: string): Buffer | undefined {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) return undefined;
  const key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return key.length === 32 ? key : undefined;
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
    if (typeof p.current !== 'string' || !p.keys || typeof p.keys !== 'object' || Array.isArray(p.keys)) {
      throw new KeyringError('the master keyring must look like {"current":"<id>","keys":{"<id>":"<base64>"}}');
    }
    return { current: p.current, keys: { ...p.keys } };
  }
  const key = decodeKey(t);
  if (!key) throw new KeyringError('the master key must be 32 bytes, base64-encoded (openssl rand -base64 32)');
  const id = keyIdFor(key);
  return { current: id, keys: { [id]: key.toString('base64') } };
}

function writeTemp(file: string, data: KeyringData): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  // 'wx' creates a new file, so the key is never written into a file with looser permissions.
  fs.writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return tmp;
}

/** Writes a keyring file atomically with 0600 permissions. */
export function writeKeyringFile(file: string, data: KeyringData): void {
  const tmp = writeTemp(file, data);
  try {
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fs.chmodSync(file, 0o600);
}

/** Creates a keyring file only if none exists yet; false when another process got there first. */
function createKeyringFileExclusive(file: string, data: KeyringData): boolean {
  const tmp = writeTemp(file, data);
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export interface KeyringOptions {
  masterKey?: string | undefined;
  masterKeyFile?: string | undefined;
  dataDir: string;
  /** Embedded mode (SQLite) may generate a key; a shared PostgreSQL deployment must be given one. */
  embedded: boolean;
}

export const DEFAULT_KEY_FILE = 'master.key';

function readKeyFile(file: string): Keyring {
  const mode = fs.statSync(file).mode & 0o077;
  if (mode !== 0) throw new KeyringError(`the master key file ${file} must not be readable by group or others (chmod 600)`);
  try {
    return new Keyring(parseKeyring(fs.readFileSync(file, 'utf8')), { kind: 'file', path: file, generated: false });
  } catch (err) {
    if (err instanceof KeyringError) throw new KeyringError(`${file}: ${err.message}`);
    throw err;
  }
}

export function loadKeyring(opts: KeyringOptions): Keyring {
  if (opts.masterKey) {
    try {
      return new Keyring(parseKeyring(opts.masterKey), { kind: 'env' });
    } catch (err) {
      if (err instanceof KeyringError) throw new KeyringError(`OPENENROLL_MASTER_KEY: ${err.message}`);
      throw err;
    }
  }
  const file = opts.masterKeyFile ?? path.join(opts.dataDir, DEFAULT_KEY_FILE);
  if (fs.existsSync(file)) return readKeyFile(file);
  if (opts.masterKeyFile || !opts.embedded) {
    throw new KeyringError(
      opts.masterKeyFile
        ? `the master key file ${file} does not exist`
        : 'no master key: set OPENENROLL_MASTER_KEY or OPENENROLL_MASTER_KEY_FILE (every node sharing a PostgreSQL store needs the same key)',
    );
  }
  const { id, key } = newKey();
  const data = { current: id, keys: { [id]: key.toString('base64') } };
  // Two first starts at once must agree on one key, not overwrite each other's.
  if (!createKeyringFileExclusive(file, data)) return readKeyFile(file);
  return new Keyring(data, { kind: 'file', path: file, generated: true });
}
