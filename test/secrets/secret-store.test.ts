import crypto from 'node:crypto';
import { fc, test as fcTest } from '@fast-check/vitest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Keyring, parseKeyring } from '../../src/secrets/keyring.js';
import { decryptSecret, encryptSecret, SecretDecryptionError, SecretStore } from '../../src/secrets/secret-store.js';
import type { Store } from '../../src/store/db.js';
import { createTenant, ensureDefaultTenant } from '../../src/tenancy/service.js';
import { createTestStore } from '../helpers/store.js';

const key = () => crypto.randomBytes(32).toString('base64');
const ring = (current: string, keys: Record<string, string>) => new Keyring({ current, keys }, { kind: 'env' });

/** Replaces one base64url part of a v1 ciphertext. */
function withPart(ciphertext: string, index: number, f: (b: Buffer) => Buffer): string {
  const parts = ciphertext.split('.');
  parts[index] = f(Buffer.from(parts[index]!, 'base64url')).toString('base64url');
  return parts.join('.');
}
const flipFirstBit = (b: Buffer) => {
  const c = Buffer.from(b);
  c[0] = c[0]! ^ 1;
  return c;
};

describe('AES-256-GCM secrets (pure)', () => {
  const k = ring('a', { a: key() });

  fcTest.prop([fc.uint8Array({ maxLength: 2048 }), fc.string()])('decrypts what it encrypts, for any bytes and associated data', (bytes, aad) => {
    const { keyId, ciphertext } = encryptSecret(k, Buffer.from(bytes), aad);
    expect(keyId).toBe('a');
    expect(decryptSecret(k, ciphertext, aad).equals(Buffer.from(bytes))).toBe(true);
  });

  it('writes v1.<keyId>.<iv>.<tag>.<ciphertext> with a fresh nonce each time', () => {
    const one = encryptSecret(k, Buffer.from('same'), 'x').ciphertext;
    const two = encryptSecret(k, Buffer.from('same'), 'x').ciphertext;
    expect(one).toMatch(/^v1\.a\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    expect(one).not.toBe(two);
    expect(one).not.toContain(Buffer.from('same').toString('base64url'));
  });

  it('fails on other associated data', () => {
    const { ciphertext } = encryptSecret(k, Buffer.from('s3cret'), 'row-1');
    expect(() => decryptSecret(k, ciphertext, 'row-2')).toThrow(SecretDecryptionError);
  });

  it.each([
    ['ciphertext', 4],
    ['tag', 3],
    ['nonce', 2],
  ])('fails when the %s is tampered with', (_name, index) => {
    const { ciphertext } = encryptSecret(k, Buffer.from('s3cret'), 'x');
    expect(() => decryptSecret(k, withPart(ciphertext, index, flipFirstBit), 'x')).toThrow(/failed authentication/);
  });

  it('refuses a truncated tag (GCM would otherwise accept tags down to 4 bytes)', () => {
    const { ciphertext } = encryptSecret(k, Buffer.from('s3cret'), 'x');
    for (const len of [4, 8, 12, 15]) {
      expect(() => decryptSecret(k, withPart(ciphertext, 3, (b) => b.subarray(0, len)), 'x')).toThrow(SecretDecryptionError);
    }
  });

  it('refuses a nonce of the wrong size', () => {
    const { ciphertext } = encryptSecret(k, Buffer.from('s3cret'), 'x');
    expect(() => decryptSecret(k, withPart(ciphertext, 2, (b) => Buffer.concat([b, Buffer.alloc(4)])), 'x')).toThrow(/malformed nonce or tag/);
  });

  it('fails with the key id when the key is not in the keyring', () => {
    const { ciphertext } = encryptSecret(ring('b', { b: key() }), Buffer.from('s3cret'), 'x');
    expect(() => decryptSecret(k, ciphertext, 'x')).toThrow("master key 'b' is not in the keyring");
  });

  it('fails with the wrong key under the right id', () => {
    const { ciphertext } = encryptSecret(ring('a', { a: key() }), Buffer.from('s3cret'), 'x');
    expect(() => decryptSecret(k, ciphertext, 'x')).toThrow(/failed authentication/);
  });

  it.each(['', 'v1', 'v2.a.b.c.d', 'v1.a.b.c', 'v1.a.b.c.d.e', 'plain text'])('refuses the unrecognised format %j', (text) => {
    expect(() => decryptSecret(k, text, 'x')).toThrow(SecretDecryptionError);
  });
});

describe('the secrets table', () => {
  let store: Store;
  let tenantA: string;
  let tenantB: string;
  beforeAll(async () => {
    store = await createTestStore();
    tenantA = (await ensureDefaultTenant(store)).tenantId;
    tenantB = (await createTenant(store, { displayName: 'B' })).id;
  });
  afterAll(async () => store.close());
  beforeEach(async () => {
    await store.db.deleteFrom('secrets').execute();
  });

  it('stores only ciphertext, and reads, replaces and deletes by tenant', async () => {
    const secrets = new SecretStore(ring('a', { a: key() }));
    const id = await store.transaction((trx) => secrets.put(trx, tenantA, 'apnsKey', 'PRIVATE-KEY-MATERIAL'));
    const row = await store.db.selectFrom('secrets').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ tenant_id: tenantA, kind: 'apnsKey', key_id: 'a' });
    expect(JSON.stringify(row)).not.toContain('PRIVATE-KEY-MATERIAL');
    expect(await secrets.getText(store.db, tenantA, id)).toBe('PRIVATE-KEY-MATERIAL');
    // Another tenant can't read it, even knowing the id.
    await expect(secrets.get(store.db, tenantB, id)).rejects.toThrow(`secret ${id} not found`);
    await secrets.replace(store.db, tenantA, id, Buffer.from([0, 1, 2]));
    expect([...(await secrets.get(store.db, tenantA, id))]).toEqual([0, 1, 2]);
    await expect(secrets.replace(store.db, tenantB, id, 'x')).rejects.toThrow(SecretDecryptionError);
    await secrets.delete(store.db, tenantB, id);
    expect(await secrets.getText(store.db, tenantA, id)).toBe('\u0000\u0001\u0002');
    await secrets.delete(store.db, tenantA, id);
    await expect(secrets.get(store.db, tenantA, id)).rejects.toThrow(/not found/);
  });

  it('binds a ciphertext to its row: copied to another row or tenant, it fails to decrypt', async () => {
    const secrets = new SecretStore(ring('a', { a: key() }));
    const victim = await secrets.put(store.db, tenantA, 'token', 'tenant A token');
    const otherRowA = await secrets.put(store.db, tenantA, 'token', 'other');
    const rowB = await secrets.put(store.db, tenantB, 'token', 'tenant B token');
    const { ciphertext } = await store.db.selectFrom('secrets').select('ciphertext').where('id', '=', victim).executeTakeFirstOrThrow();
    await store.db.updateTable('secrets').set({ ciphertext }).where('id', 'in', [otherRowA, rowB]).execute();
    await expect(secrets.get(store.db, tenantA, otherRowA)).rejects.toThrow(/failed authentication/);
    await expect(secrets.get(store.db, tenantB, rowB)).rejects.toThrow(/failed authentication/);
    expect(await secrets.getText(store.db, tenantA, victim)).toBe('tenant A token');
  });

  it('fails on a tampered row', async () => {
    const secrets = new SecretStore(ring('a', { a: key() }));
    const id = await secrets.put(store.db, tenantA, 'token', 'value');
    const { ciphertext } = await store.db.selectFrom('secrets').select('ciphertext').where('id', '=', id).executeTakeFirstOrThrow();
    await store.db.updateTable('secrets').set({ ciphertext: withPart(ciphertext, 4, flipFirstBit) }).where('id', '=', id).execute();
    await expect(secrets.get(store.db, tenantA, id)).rejects.toThrow(SecretDecryptionError);
  });

  it('rotation: old ciphertexts decrypt with the new keyring, then reencryptAll moves every secret to the new key', async () => {
    const oldKey = key();
    const before = new SecretStore(ring('old', { old: oldKey }));
    const ids: [string, string][] = [];
    for (let i = 0; i < 7; i++) {
      const tenant = i % 2 ? tenantA : tenantB;
      ids.push([tenant, await before.put(store.db, tenant, 'token', `secret ${i}`)]);
    }
    const rotated = ring('new', { old: oldKey, new: key() });
    const after = new SecretStore(rotated);
    // Before re-encryption every secret still reads (the old key stays in the keyring).
    for (const [i, [tenant, id]] of ids.entries()) expect(await after.getText(store.db, tenant, id)).toBe(`secret ${i}`);
    // Small batches exercise the batching loop.
    expect(await after.reencryptAll(store, 3)).toBe(7);
    const rows = await store.db.selectFrom('secrets').select(['key_id', 'ciphertext']).execute();
    expect(rows.every((r) => r.key_id === 'new' && r.ciphertext.startsWith('v1.new.'))).toBe(true);
    // The old key can now be retired.
    const onlyNew = new SecretStore(ring('new', { new: rotated.toJSON().keys.new! }));
    for (const [i, [tenant, id]] of ids.entries()) expect(await onlyNew.getText(store.db, tenant, id)).toBe(`secret ${i}`);
    expect(await after.reencryptAll(store, 3)).toBe(0);
  });

  it('rotation stops, changing nothing in the batch, at a secret no key can read', async () => {
    const keyA = key();
    await new SecretStore(ring('a', { a: keyA })).put(store.db, tenantA, 'token', 'readable');
    await new SecretStore(ring('lost', { lost: key() })).put(store.db, tenantA, 'token', 'unreadable');
    const target = new SecretStore(ring('c', { a: keyA, c: key() }));
    await expect(target.reencryptAll(store)).rejects.toThrow("master key 'lost' is not in the keyring");
    const keyIds = (await store.db.selectFrom('secrets').select('key_id').execute()).map((r) => r.key_id).sort();
    expect(keyIds).toEqual(['a', 'lost']);
  });
});

describe('keyring JSON round trip', () => {
  it('serialises every key and the current id', () => {
    const k = new Keyring(parseKeyring(JSON.stringify({ current: 'b', keys: { a: key(), b: key() } })), { kind: 'env' });
    const again = new Keyring(parseKeyring(JSON.stringify(k.toJSON())), { kind: 'env' });
    expect(again.currentKeyId).toBe('b');
    expect(again.get('a')!.equals(k.get('a')!)).toBe(true);
  });
});
