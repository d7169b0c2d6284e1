import crypto from 'node:crypto';
import type { Executor } from '../store/db.js';

/**
 * User passwords are kept only as scrypt hashes in a PHC-style string that carries its own
 * parameters and salt, so the cost can be raised later without breaking stored hashes:
 *   $scrypt$ln=14,r=8,p=5$<salt, base64>$<hash, base64>
 * N = 2^14, r = 8, p = 5 is one of OWASP's recommended scrypt settings (16 MiB, a few hundred
 * milliseconds of CPU): slow for guessing, acceptable for sign-in.
 */

const CURRENT = { ln: 14, r: 8, p: 5, saltBytes: 16, keyBytes: 32 } as const;
// Bounds on what we accept from a stored hash, so a corrupt row can't make us burn memory or CPU.
const BOUNDS = { lnMin: 10, lnMax: 20, rMax: 32, pMax: 16, keyMin: 16, keyMax: 64 } as const;

interface ScryptParams {
  ln: number;
  r: number;
  p: number;
}

function derive(password: string, salt: Buffer, keyLen: number, { ln, r, p }: ScryptParams): Promise<Buffer> {
  const N = 2 ** ln;
  return new Promise((resolve, reject) => {
    crypto.scrypt(password.normalize('NFC'), salt, keyLen, { N, r, p, maxmem: 256 * N * r * p + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(CURRENT.saltBytes);
  const key = await derive(password, salt, CURRENT.keyBytes, CURRENT);
  return `$scrypt$ln=${CURRENT.ln},r=${CURRENT.r},p=${CURRENT.p}$${b64(salt)}$${b64(key)}`;
}

function parseHash(stored: string): { params: ScryptParams; salt: Buffer; key: Buffer } | null {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,88})\$([A-Za-z0-9+/]{16,88})$/.exec(stored);
  if (!m) return null;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const salt = Buffer.from(m[4]!, 'base64');
  const key = Buffer.from(m[5]!, 'base64');
  if (params.ln < BOUNDS.lnMin || params.ln > BOUNDS.lnMax || params.r < 1 || params.r > BOUNDS.rMax || params.p < 1 || params.p > BOUNDS.pMax) return null;
  if (key.length < BOUNDS.keyMin || key.length > BOUNDS.keyMax) return null;
  return { params, salt, key };
}

/** True when `password` matches the stored hash; compared in constant time. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const candidate = await derive(password, parsed.salt, parsed.key.length, parsed.params);
  return crypto.timingSafeEqual(candidate, parsed.key);
}

// Checked when there is no user or no password, so a miss costs as long as a wrong password.
let dummyHash: Promise<string> | undefined;

export interface VerifiedUser {
  id: string;
  userPrincipalName: string;
  displayName: string;
  forceChangePasswordNextSignIn: boolean;
}

/**
 * Checks a sign-in: the user must exist in the tenant (UPN compared without case), be enabled,
 * and have a password that matches. Returns the user, or null for any failure, without saying
 * which (so callers can't leak whether an account exists).
 */
export async function verifyUserPassword(db: Executor, tenantId: string, userPrincipalName: string, password: string): Promise<VerifiedUser | null> {
  const row = await db
    .selectFrom('users')
    .select(['id', 'user_principal_name', 'display_name', 'account_enabled', 'password_hash', 'force_change_password'])
    .where('tenant_id', '=', tenantId)
    .where('upn_lower', '=', userPrincipalName.trim().toLowerCase())
    .executeTakeFirst();
  if (!row?.password_hash) {
    dummyHash ??= hashPassword(crypto.randomBytes(16).toString('hex'));
    await verifyPassword(await dummyHash, password);
    return null;
  }
  const ok = await verifyPassword(row.password_hash, password);
  if (!ok || row.account_enabled !== 1) return null;
  return {
    id: row.id,
    userPrincipalName: row.user_principal_name,
    displayName: row.display_name,
    forceChangePasswordNextSignIn: row.force_change_password === 1,
  };
}
