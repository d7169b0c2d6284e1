import crypto from 'node:crypto';
import type { Executor, Trx } from '../../store/db.js';
import type { EnrollmentIntentsTable, ScepChallengesTable } from '../../store/schema.js';
import { MINUTE } from '../../shared/time.js';

/**
 * SCEP challenges: 256 random bits handed to the device in the profile; only their SHA-256 is
 * stored. One-time challenges live 15 minutes (the window Intune documents, after which devices
 * say "The SCEP server returned an invalid response."); reusable ones expire with their intent.
 */

export const ONE_TIME_CHALLENGE_MS = 15 * MINUTE;
/** Ours are 64 hex characters; the bound keeps hashing an attacker's string free. */
export const MAX_CHALLENGE_LENGTH = 256;

export const hashChallenge = (challenge: string): string => crypto.createHash('sha256').update(challenge, 'utf8').digest('hex');

export async function createChallenge(
  trx: Trx,
  intent: Pick<EnrollmentIntentsTable, 'id' | 'tenant_id' | 'reusable'>,
  now: Date,
  expiresAt: Date,
): Promise<{ challenge: string; row: ScepChallengesTable }> {
  // Hex, not base64url: "_" is outside PrintableString, the type clients use for challengePassword.
  const challenge = crypto.randomBytes(32).toString('hex');
  const row: ScepChallengesTable = {
    id: crypto.randomUUID(),
    tenant_id: intent.tenant_id,
    intent_id: intent.id,
    challenge_hash: hashChallenge(challenge),
    reusable: intent.reusable ? 1 : 0,
    created_at: now.toISOString(),
    expires_at: expiresAt.toISOString(),
    used_at: null,
  };
  await trx.insertInto('scep_challenges').values(row).execute();
  return { challenge, row };
}

export type ChallengeRefusal = 'unknown' | 'otherTenant' | 'expired' | 'used' | 'intentMissing' | 'intentExpired' | 'intentConsumed';

export type ChallengeCheck = { ok: true; challenge: ScepChallengesTable; intent: EnrollmentIntentsTable } | { ok: false; reason: ChallengeRefusal };

/**
 * Finds the challenge and its intent and says whether it may be used now: known, of this tenant,
 * before its expiry (exclusive: at 15:00 it is gone), not used when one-time, and its intent
 * current. Reads only; `claimChallenge` marks it used.
 */
export async function checkChallenge(db: Executor, tenantId: string, presented: string, now: Date): Promise<ChallengeCheck> {
  if (presented.length === 0 || presented.length > MAX_CHALLENGE_LENGTH) return { ok: false, reason: 'unknown' };
  const hash = hashChallenge(presented);
  const challenge = await db.selectFrom('scep_challenges').selectAll().where('challenge_hash', '=', hash).executeTakeFirst();
  // The lookup is by hash; the constant-time compare keeps the secret comparison itself free of timing.
  if (!challenge || !crypto.timingSafeEqual(Buffer.from(challenge.challenge_hash, 'hex'), Buffer.from(hash, 'hex'))) return { ok: false, reason: 'unknown' };
  if (challenge.tenant_id !== tenantId) return { ok: false, reason: 'otherTenant' };
  if (now.getTime() >= new Date(challenge.expires_at).getTime()) return { ok: false, reason: 'expired' };
  if (!challenge.reusable && challenge.used_at !== null) return { ok: false, reason: 'used' };
  const intent = await db.selectFrom('enrollment_intents').selectAll().where('tenant_id', '=', tenantId).where('id', '=', challenge.intent_id).executeTakeFirst();
  if (!intent) return { ok: false, reason: 'intentMissing' };
  if (now.getTime() >= new Date(intent.expires_at).getTime()) return { ok: false, reason: 'intentExpired' };
  if (!intent.reusable && intent.consumed_at !== null) return { ok: false, reason: 'intentConsumed' };
  return { ok: true, challenge, intent };
}

/** Marks the challenge used; for a one-time challenge only if nobody did meanwhile (false: lost the race). */
export async function claimChallenge(trx: Trx, challenge: ScepChallengesTable, now: Date): Promise<boolean> {
  let q = trx.updateTable('scep_challenges').set({ used_at: now.toISOString() }).where('tenant_id', '=', challenge.tenant_id).where('id', '=', challenge.id);
  if (!challenge.reusable) q = q.where('used_at', 'is', null);
  const res = await q.executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}
