import crypto from 'node:crypto';
import type { Executor, Store } from '../store/db.js';
import type { Keyring } from './keyring.js';

/**
 * Every private key, token and secret the service keeps lives in the `secrets` table, encrypted
 * with AES-256-GCM under the current master key. The ciphertext names its key id, and the
 * associated data binds it to its row (tenant and id), so a ciphertext copied to another row fails.
 * Format: v1.<keyId>.<iv>.<tag>.<ciphertext>, base64url parts.
 */

export class SecretDecryptionError extends Error {}

const IV_BYTES = 12;
const TAG_BYTES = 16;

export function encryptSecret(keyring: Keyring, plaintext: Buffer, aad: string): { keyId: string; ciphertext: string } {
  const { id, key } = keyring.current();
  const iv = crypto.randomBytes(IV_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag();
  return { keyId: id, ciphertext: ['v1', id, iv.toString('base64url'), tag.toString('base64url'), ct.toString('base64url')].join('.') };
}

export function decryptSecret(keyring: Keyring, ciphertext: string, aad: string): Buffer {
  const parts = ciphertext.split('.');
  if (parts.length !== 5 || parts[0] !== 'v1') throw new SecretDecryptionError('unrecognised secret format');
  const [, keyId, ivText, tagText, ct] = parts as [string, string, string, string, string];
  const iv = Buffer.from(ivText, 'base64url');
  const tag = Buffer.from(tagText, 'base64url');
  // GCM would otherwise accept truncated tags (down to 4 bytes), making forgery far easier.
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new SecretDecryptionError('secret has a malformed nonce or tag');
  const key = keyring.get(keyId);
  if (!key) throw new SecretDecryptionError(`master key '${keyId}' is not in the keyring`);
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]);
  } catch {
    throw new SecretDecryptionError('secret failed authentication (wrong key or tampered ciphertext)');
  }
}

const aadFor = (tenantId: string, id: string) => `openenroll-secret:${tenantId}:${id}`;

export class SecretStore {
  constructor(
    private readonly keyring: Keyring,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Stores a new secret and returns its id; call inside the transaction that references it. */
  async put(db: Executor, tenantId: string, kind: string, value: Buffer | string): Promise<string> {
    const id = crypto.randomUUID();
    const { keyId, ciphertext } = encryptSecret(this.keyring, Buffer.from(value), aadFor(tenantId, id));
    const at = this.now().toISOString();
    await db
      .insertInto('secrets')
      .values({ id, tenant_id: tenantId, kind, key_id: keyId, ciphertext, created_at: at, updated_at: at })
      .execute();
    return id;
  }

  async replace(db: Executor, tenantId: string, id: string, value: Buffer | string): Promise<void> {
    const { keyId, ciphertext } = encryptSecret(this.keyring, Buffer.from(value), aadFor(tenantId, id));
    const res = await db
      .updateTable('secrets')
      .set({ key_id: keyId, ciphertext, updated_at: this.now().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new SecretDecryptionError(`secret ${id} not found`);
  }

  async get(db: Executor, tenantId: string, id: string): Promise<Buffer> {
    const row = await db
      .selectFrom('secrets')
      .select('ciphertext')
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new SecretDecryptionError(`secret ${id} not found`);
    return decryptSecret(this.keyring, row.ciphertext, aadFor(tenantId, id));
  }

  async getText(db: Executor, tenantId: string, id: string): Promise<string> {
    return (await this.get(db, tenantId, id)).toString('utf8');
  }

  async delete(db: Executor, tenantId: string, id: string): Promise<void> {
    await db.deleteFrom('secrets').where('tenant_id', '=', tenantId).where('id', '=', id).execute();
  }

  /**
   * Re-encrypts every secret not under the current key, in batches of one transaction each.
   * Returns how many secrets were re-encrypted.
   */
  async reencryptAll(store: Store, batchSize = 200): Promise<number> {
    let total = 0;
    for (;;) {
      // Read per batch: a file keyring may move on while this runs; rows are then re-encrypted once more.
      const current = this.keyring.currentKeyId;
      const { seen, updated } = await store.transaction(async (trx) => {
        const rows = await trx
          .selectFrom('secrets')
          .select(['id', 'tenant_id', 'ciphertext'])
          .where('key_id', '<>', current)
          .orderBy('id')
          .limit(batchSize)
          .execute();
        let changed = 0;
        for (const r of rows) {
          const aad = aadFor(r.tenant_id, r.id);
          const next = encryptSecret(this.keyring, decryptSecret(this.keyring, r.ciphertext, aad), aad);
          // Compare-and-swap: a value replaced meanwhile by another node must not be overwritten with the old one.
          const res = await trx
            .updateTable('secrets')
            .set({ key_id: next.keyId, ciphertext: next.ciphertext, updated_at: this.now().toISOString() })
            .where('tenant_id', '=', r.tenant_id)
            .where('id', '=', r.id)
            .where('ciphertext', '=', r.ciphertext)
            .executeTakeFirst();
          changed += Number(res.numUpdatedRows);
        }
        return { seen: rows.length, updated: changed };
      });
      total += updated;
      if (seen < batchSize) return total;
    }
  }
}
