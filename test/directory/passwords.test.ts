import { describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../src/directory/passwords.js';

describe('password hashes', () => {
  it('salts every hash and verifies only the right password', async () => {
    const a = await hashPassword('Corr3ct-Horse!');
    const b = await hashPassword('Corr3ct-Horse!');
    expect(a).toMatch(/^\$scrypt\$ln=14,r=8,p=5\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword(a, 'Corr3ct-Horse!')).toBe(true);
    expect(await verifyPassword(b, 'Corr3ct-Horse!')).toBe(true);
    expect(await verifyPassword(a, 'corr3ct-Horse!')).toBe(false);
    expect(await verifyPassword(a, '')).toBe(false);
  });

  it('treats canonically equivalent Unicode the same', async () => {
    const h = await hashPassword('Caf\u00e9-Passw0rd');
    expect(await verifyPassword(h, 'Cafe\u0301-Passw0rd')).toBe(true);
  });

  it('refuses malformed or out-of-bounds stored hashes instead of running them', async () => {
    const h = await hashPassword('Corr3ct-Horse!');
    const [, , , salt, key] = h.split('$');
    for (const stored of [
      '',
      'plaintext',
      h.replace('$scrypt$', '$argon2id$'),
      `$scrypt$ln=25,r=8,p=1$${salt}$${key}`, // 2^25 would need gigabytes
      `$scrypt$ln=9,r=8,p=1$${salt}$${key}`,
      `$scrypt$ln=14,r=99,p=1$${salt}$${key}`,
      `$scrypt$ln=14,r=8,p=0$${salt}$${key}`,
      `$scrypt$ln=14,r=8,p=5$${salt}$${key!.slice(0, 10)}`,
    ]) {
      expect(await verifyPassword(stored, 'Corr3ct-Horse!'), stored).toBe(false);
    }
  });

  it('verifies hashes made with other parameters, so the cost can be raised later', async () => {
    const crypto = await import('node:crypto');
    const salt = crypto.randomBytes(16);
    const key = crypto.scryptSync('Old-Passw0rd', salt, 32, { N: 2 ** 12, r: 8, p: 1 });
    const stored = `$scrypt$ln=12,r=8,p=1$${salt.toString('base64').replace(/=+$/, '')}$${key.toString('base64').replace(/=+$/, '')}`;
    expect(await verifyPassword(stored, 'Old-Passw0rd')).toBe(true);
    expect(await verifyPassword(stored, 'Old-Passw0rd!')).toBe(false);
  });
});
