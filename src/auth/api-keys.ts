import crypto from 'node:crypto';
import type { Executor } from '../store/db.js';
import { isRole, type Principal, type Role } from './principal.js';
import { randomAlnum } from '../shared/random.js';

/**
 * Admin API keys: `oe_<id>_<secret>`. Only a SHA-256 of the 256-bit random secret is stored
 * (a slow hash adds nothing for secrets this long); it is compared in constant time.
 */

const KEY_FORMAT = /^oe_([a-z0-9]{16})_([A-Za-z0-9_-]{43})$/;

export interface CreatedApiKey {
  id: string;
  /** The whole bearer token. Shown once; never stored. */
  token: string;
}

export interface ApiKeyInfo {
  id: string;
  tenantId: string;
  displayName: string;
  role: Role;
  scopeTagIds: string[] | null;
  createdAt: string;
  createdBy: string | null;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export class ApiKeyError extends Error {}

const hashSecret = (secret: string) => crypto.createHash('sha256').update(secret, 'utf8').digest('hex');

export function isApiKeyToken(token: string): boolean {
  return token.startsWith('oe_');
}

export async function createApiKey(
  db: Executor,
  input: { tenantId: string; displayName: string; role: Role; scopeTagIds: string[] | null; createdBy?: string; expiresAt?: string | null },
  now = new Date(),
): Promise<CreatedApiKey> {
  if (input.role === 'scopedAdministrator' && !input.scopeTagIds?.length) {
    throw new ApiKeyError('a scopedAdministrator key needs at least one scope tag');
  }
  const id = randomAlnum(16);
  const secret = crypto.randomBytes(32).toString('base64url');
  await db
    .insertInto('api_keys')
    .values({
      id,
      tenant_id: input.tenantId,
      display_name: input.displayName,
      role: input.role,
      scope_tag_ids: input.scopeTagIds === null ? null : JSON.stringify(input.scopeTagIds),
      secret_hash: hashSecret(secret),
      created_at: now.toISOString(),
      created_by: input.createdBy ?? null,
      expires_at: input.expiresAt ?? null,
      last_used_at: null,
      revoked_at: null,
    })
    .execute();
  return { id, token: `oe_${id}_${secret}` };
}

/** Resolves a bearer token to its principal, or undefined for anything not a live key. */
export async function verifyApiKey(db: Executor, token: string, now = new Date()): Promise<Principal | undefined> {
  const m = KEY_FORMAT.exec(token);
  if (!m) return undefined;
  const [, id, secret] = m as unknown as [string, string, string];
  const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  // Hash even when the id is unknown so timing doesn't reveal which ids exist.
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(row?.secret_hash ?? '0'.repeat(64), 'hex');
  const match = crypto.timingSafeEqual(presented, stored);
  if (!row || !match) return undefined;
  if (row.revoked_at) return undefined;
  // A row edited by hand to an unknown role must not reach the permission table.
  if (!isRole(row.role)) return undefined;
  if (row.expires_at && row.expires_at <= now.toISOString()) return undefined;
  const lastUsed = row.last_used_at ? Date.parse(row.last_used_at) : 0;
  if (now.getTime() - lastUsed > 60_000) {
    await db.updateTable('api_keys').set({ last_used_at: now.toISOString() }).where('id', '=', id).execute();
  }
  return {
    kind: 'apiKey',
    id: row.id,
    displayName: row.display_name,
    tenantId: row.tenant_id,
    role: row.role,
    scopeTagIds: row.scope_tag_ids === null ? null : (JSON.parse(row.scope_tag_ids) as string[]),
  };
}

export async function listApiKeys(db: Executor, tenantId: string): Promise<ApiKeyInfo[]> {
  const rows = await db.selectFrom('api_keys').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at').execute();
  return rows.map((r) => ({
    id: r.id,
    tenantId: r.tenant_id,
    displayName: r.display_name,
    role: r.role as Role,
    scopeTagIds: r.scope_tag_ids === null ? null : (JSON.parse(r.scope_tag_ids) as string[]),
    createdAt: r.created_at,
    createdBy: r.created_by,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  }));
}

export async function revokeApiKey(db: Executor, tenantId: string, id: string, now = new Date()): Promise<boolean> {
  const res = await db
    .updateTable('api_keys')
    .set({ revoked_at: now.toISOString() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}
