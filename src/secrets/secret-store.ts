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

export function encryptSecret(keyring: Keyring, plaintext: Buffer, aad: string): { keyId: string; ciphertext: string } {
  const { id, key } = keyring.current();
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag();
  return { keyId: id, ciphertext: ['v1', id, iv.toString('base64url'), tag.toString('base64url'), ct.toString('base64url')].join('.') };
}

export function decryptSecret(keyring: Keyring, ciphertext: string, aad: string): Buffer {
  const parts = ciphertext.split('.');
  if (parts.length !== 5 || parts[0] !== 'v1') throw new SecretDecryptionError('unrecognised secret format');
  const [, keyId, iv, tag, ct] = parts as [string, string, string, string, string];
  const key = keyring.get(keyId);
  if (!key) throw new SecretDecryptionError(`master key '${keyId}' is not in the keyring`);
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
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
    const current = this.keyring.currentKeyId;
    let total = 0;
    for (;;) {
      const n = await store.transaction(async (trx) => {
        const rows = await trx
          .selectFrom('secrets')
          .select(['id', 'tenant_id', 'ciphertext'])
          .where('key_id', '<>', current)
          .orderBy('id')
          .limit(batchSize)
          .execute();
        for (const r of rows) {
          const plain = decryptSecret(this.keyring, r.ciphertext, aadFor(r.tenant_id, r.id));
          await this.replace(trx, r.tenant_id, r.id, plain);
        }
        return rows.length;
      });
      total += n;
      if (n < batchSize) return total;
    }
  }
}
