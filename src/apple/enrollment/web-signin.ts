import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { sql } from 'kysely';
import { verifyUserPassword, type VerifiedUser } from '../../directory/passwords.js';
import type { UserTerms } from '../../enrollment-policy/terms/service.js';
import { MINUTE, type Clock } from '../../shared/time.js';
import type { Executor, Store } from '../../store/db.js';

/**
 * What every enrollment sign-in page shares (ADE's configuration_web_url now, user-initiated
 * enrollment next): server-rendered HTML, form bodies, the session cookie and its row in
 * web_enrollment_sessions, CSRF tokens, password sign-in against the directory and its throttle.
 * OIDC sign-in is in web-signin-oidc.ts.
 */

// ---- HTML ---------------------------------------------------------------------------------

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** Headers of every page: never cached, never framed, no scripts at all. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const STYLE =
  'body{font-family:-apple-system,system-ui,sans-serif;margin:0;padding:24px;background:#f5f5f7;color:#1d1d1f}' +
  'main{max-width:420px;margin:0 auto;background:#fff;border-radius:12px;padding:24px}' +
  'h1{font-size:22px;margin:0 0 12px}label{display:block;margin:12px 0 4px;font-size:14px}' +
  'input[type=text],input[type=email],input[type=password]{width:100%;box-sizing:border-box;padding:10px;font-size:16px;border:1px solid #c7c7cc;border-radius:8px}' +
  'button,.button{display:block;width:100%;margin-top:16px;padding:12px;font-size:16px;border:0;border-radius:8px;background:#0071e3;color:#fff;text-align:center;text-decoration:none}' +
  '.secondary{background:#e8e8ed;color:#1d1d1f}.error{color:#b00020}.terms{white-space:pre-wrap;max-height:320px;overflow:auto;border:1px solid #e5e5ea;padding:8px;font-size:14px}' +
  '.small{font-size:12px;color:#6e6e73}';

/** A complete page; `body` is HTML the caller built from escaped parts. */
export function renderPage(title: string, body: string): string {
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>\n`;
}

export interface SignInFormOptions {
  action: string;
  csrfToken: string;
  heading?: string;
  /** Who is asking, e.g. the organization or profile name. */
  intro?: string;
  userName?: string;
  error?: string;
  /** A link that starts single sign-on with the organization's identity provider. */
  oidcHref?: string;
}

export function signInPage(o: SignInFormOptions): string {
  const heading = o.heading ?? 'Sign in';
  return renderPage(
    heading,
    `<h1>${escapeHtml(heading)}</h1>` +
      (o.intro ? `<p>${escapeHtml(o.intro)}</p>` : '') +
      (o.error ? `<p class="error" role="alert">${escapeHtml(o.error)}</p>` : '') +
      `<form method="post" action="${escapeHtml(o.action)}">` +
      `<input type="hidden" name="csrf" value="${escapeHtml(o.csrfToken)}">` +
      `<input type="hidden" name="step" value="signIn">` +
      `<label for="username">Work or school account</label>` +
      `<input type="email" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${escapeHtml(o.userName ?? '')}">` +
      `<label for="password">Password</label>` +
      `<input type="password" id="password" name="password" autocomplete="current-password" required>` +
      `<button type="submit" name="submit" value="signIn">Sign in</button>` +
      `</form>` +
      (o.oidcHref ? `<a class="button secondary" href="${escapeHtml(o.oidcHref)}">Sign in with your organization</a>` : ''),
  );
}

export interface TermsPageOptions {
  action: string;
  csrfToken: string;
  terms: readonly Pick<UserTerms, 'termsId' | 'version' | 'displayName' | 'title' | 'bodyText' | 'acceptanceStatement'>[];
  error?: string;
}

/** Every policy the user still has to accept, with one checkbox accepting exactly the versions shown. */
export function termsPage(o: TermsPageOptions): string {
  const shown = o.terms.map((t) => `${t.termsId}:${t.version}`).join(',');
  const sections = o.terms
    .map(
      (t) =>
        `<section><h2>${escapeHtml(t.title ?? t.displayName)}</h2>` +
        `<div class="terms">${escapeHtml(t.bodyText ?? '')}</div>` +
        (t.acceptanceStatement ? `<p>${escapeHtml(t.acceptanceStatement)}</p>` : '') +
        `</section>`,
    )
    .join('');
  return renderPage(
    'Terms and conditions',
    `<h1>Terms and conditions</h1><p>Your organization requires you to accept these terms before this device is enrolled.</p>` +
      (o.error ? `<p class="error" role="alert">${escapeHtml(o.error)}</p>` : '') +
      sections +
      `<form method="post" action="${escapeHtml(o.action)}">` +
      `<input type="hidden" name="csrf" value="${escapeHtml(o.csrfToken)}">` +
      `<input type="hidden" name="step" value="acceptTerms">` +
      `<input type="hidden" name="terms" value="${escapeHtml(shown)}">` +
      `<label><input type="checkbox" name="accept" value="yes" required> I accept the terms and conditions</label>` +
      `<button type="submit" name="submit" value="accept">Accept and continue</button>` +
      `</form>`,
  );
}

export function messagePage(title: string, message: string, detail?: string): string {
  return renderPage(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>` + (detail ? `<p class="small">${escapeHtml(detail)}</p>` : ''));
}

export function sendPage(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).send(html);
}

// ---- form bodies ----------------------------------------------------------------------------

export const FORM_LIMITS = { bytes: 16 * 1024, fields: 32 } as const;

export class FormError extends Error {}

/** application/x-www-form-urlencoded: one value per name (a repeated name is refused). */
export function parseForm(body: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const params = new URLSearchParams(body);
  let n = 0;
  for (const [k, v] of params) {
    if (++n > FORM_LIMITS.fields) throw new FormError('The form has too many fields.');
    if (Object.hasOwn(out, k)) throw new FormError(`The form field '${k}' was sent more than once.`);
    out[k] = v;
  }
  return out;
}

/** Adds the form parser to an encapsulated plugin scope (never to the admin API). */
export function registerFormParser(app: FastifyInstance): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_LIMITS.bytes }, (_req, body, done) => {
    try {
      done(null, parseForm(body as string));
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      (e as Error & { statusCode?: number }).statusCode = 400;
      done(e, undefined);
    }
  });
}

// ---- cookies --------------------------------------------------------------------------------

/** A cookie's value from the Cookie header (the first one of that name). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** HttpOnly, Secure, SameSite=Lax: the sign-in form posts to the same site, and the IdP redirects back by GET. */
export function sessionCookie(name: string, value: string, path: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=${path}; Max-Age=${maxAgeSeconds}; HttpOnly; Secure; SameSite=Lax`;
}

export function clearedCookie(name: string, path: string): string {
  return `${name}=; Path=${path}; Max-Age=0; HttpOnly; Secure; SameSite=Lax`;
}

// ---- sessions -------------------------------------------------------------------------------

export const SESSION_TTL_MS = 15 * MINUTE;

export interface WebSession<C> {
  idHash: string;
  tenantId: string;
  userId: string | null;
  purpose: string;
  context: C;
  csrfToken: string;
  createdAt: string;
  expiresAt: string;
}

const TOKEN = /^[A-Za-z0-9_-]{43}$/;
const hashToken = (token: string) => crypto.createHash('sha256').update(token).digest('hex');

/** Constant-time comparison of two strings of any length. */
export function safeEqual(a: string, b: string): boolean {
  const ha = crypto.createHash('sha256').update(a).digest();
  const hb = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(ha, hb) && a.length === b.length;
}

/**
 * Sign-in sessions: the browser holds a random 256-bit token in a cookie, the store only its
 * SHA-256, so a leaked table can't be replayed. 15 minutes from creation; a sign-in rotates the token.
 */
export class WebSessions {
  constructor(private readonly clock: Clock) {}

  async create<C>(db: Executor, tenantId: string, purpose: string, context: C, ttlMs = SESSION_TTL_MS): Promise<{ token: string; session: WebSession<C> }> {
    const now = this.clock.now();
    // Expired sessions of the tenant go as new ones arrive: no sweeper job needed.
    await db.deleteFrom('web_enrollment_sessions').where('tenant_id', '=', tenantId).where('expires_at', '<=', now.toISOString()).execute();
    const token = crypto.randomBytes(32).toString('base64url');
    const session: WebSession<C> = {
      idHash: hashToken(token),
      tenantId,
      userId: null,
      purpose,
      context,
      csrfToken: crypto.randomBytes(32).toString('base64url'),
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
    };
    await db
      .insertInto('web_enrollment_sessions')
      .values({
        id_hash: session.idHash,
        tenant_id: tenantId,
        user_id: null,
        purpose,
        context: JSON.stringify(context),
        csrf_token: session.csrfToken,
        created_at: session.createdAt,
        expires_at: session.expiresAt,
      })
      .execute();
    return { token, session };
  }

  /** The live session of this token for this purpose (and tenant; null for a tenant-less callback such as OIDC's). */
  async find<C>(db: Executor, tenantId: string | null, purpose: string, token: string | undefined): Promise<WebSession<C> | undefined> {
    if (!token || !TOKEN.test(token)) return undefined;
    let q = db
      .selectFrom('web_enrollment_sessions')
      .selectAll()
      .where('id_hash', '=', hashToken(token))
      .where('purpose', '=', purpose);
    if (tenantId !== null) q = q.where('tenant_id', '=', tenantId);
    const row = await q
      .where('expires_at', '>', this.clock.now().toISOString())
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      idHash: row.id_hash,
      tenantId: row.tenant_id,
      userId: row.user_id,
      purpose: row.purpose,
      context: JSON.parse(row.context) as C,
      csrfToken: row.csrf_token,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
    };
  }

  async saveContext<C>(db: Executor, session: WebSession<C>, context: C): Promise<void> {
    session.context = context;
    await db.updateTable('web_enrollment_sessions').set({ context: JSON.stringify(context) }).where('id_hash', '=', session.idHash).execute();
  }

  /** Binds the user and rotates the token (and CSRF token), so a token planted before sign-in is worthless after it. */
  async signedIn<C>(db: Executor, session: WebSession<C>, userId: string, context: C): Promise<string> {
    const token = crypto.randomBytes(32).toString('base64url');
    const idHash = hashToken(token);
    const csrfToken = crypto.randomBytes(32).toString('base64url');
    await db
      .updateTable('web_enrollment_sessions')
      .set({ id_hash: idHash, user_id: userId, context: JSON.stringify(context), csrf_token: csrfToken })
      .where('id_hash', '=', session.idHash)
      .execute();
    Object.assign(session, { idHash, userId, context, csrfToken });
    return token;
  }

  async end(db: Executor, session: Pick<WebSession<unknown>, 'idHash'>): Promise<void> {
    await db.deleteFrom('web_enrollment_sessions').where('id_hash', '=', session.idHash).execute();
  }
}

export function csrfMatches(session: Pick<WebSession<unknown>, 'csrfToken'>, presented: string | undefined): boolean {
  return typeof presented === 'string' && presented.length > 0 && safeEqual(session.csrfToken, presented);
}

// ---- throttle -------------------------------------------------------------------------------

export type ThrottleSubjectKind = 'user' | 'address' | 'device';

export interface ThrottleSubject {
  kind: ThrottleSubjectKind;
  value: string;
}

/**
 * Failed sign-ins allowed per subject within the window before it is locked out for `lockMs`:
 * a user name (guessing one account's password), a client address (spraying many accounts), a
 * device serial (Setup Assistant's Basic prompt). Counted in the store so every node agrees.
 */
export const SIGNIN_LIMITS = {
  failures: { user: 10, address: 30, device: 10 } satisfies Record<ThrottleSubjectKind, number>,
  windowMs: 15 * MINUTE,
  lockMs: 15 * MINUTE,
} as const;

export class SignInThrottle {
  constructor(private readonly clock: Clock) {}

  private key(tenantId: string, s: ThrottleSubject): string {
    return crypto.createHash('sha256').update(`${tenantId}\n${s.kind}\n${s.value.trim().toLowerCase()}`).digest('hex');
  }

  /** When the latest lock of any subject ends; null when none is locked. */
  async lockedUntil(db: Executor, tenantId: string, subjects: readonly ThrottleSubject[]): Promise<Date | null> {
    if (subjects.length === 0) return null;
    const now = this.clock.now().toISOString();
    const rows = await db
      .selectFrom('enrollment_signin_throttle')
      .select('locked_until')
      .where('tenant_id', '=', tenantId)
      .where('key_hash', 'in', subjects.map((s) => this.key(tenantId, s)))
      .where('locked_until', '>', now)
      .execute();
    const latest = rows.map((r) => r.locked_until!).sort().pop();
    return latest ? new Date(latest) : null;
  }

  /** Counts a failure for each subject; locks the ones that reach their limit. */
  async recordFailure(store: Store, tenantId: string, subjects: readonly ThrottleSubject[]): Promise<void> {
    const now = this.clock.now();
    const nowIso = now.toISOString();
    const windowStart = new Date(now.getTime() - SIGNIN_LIMITS.windowMs).toISOString();
    await store.transaction(async (trx) => {
      for (const s of subjects) {
        const keyHash = this.key(tenantId, s);
        // One statement per subject, so concurrent failures on other nodes all count.
        const row = await trx
          .insertInto('enrollment_signin_throttle')
          .values({ tenant_id: tenantId, key_hash: keyHash, failures: 1, window_started_at: nowIso, locked_until: null, updated_at: nowIso })
          .onConflict((oc) =>
            oc.columns(['tenant_id', 'key_hash']).doUpdateSet({
              failures: sql<number>`case when enrollment_signin_throttle.window_started_at < ${windowStart} then 1 else enrollment_signin_throttle.failures + 1 end`,
              window_started_at: sql<string>`case when enrollment_signin_throttle.window_started_at < ${windowStart} then ${nowIso} else enrollment_signin_throttle.window_started_at end`,
              updated_at: nowIso,
            }),
          )
          .returning('failures')
          .executeTakeFirstOrThrow();
        if (Number(row.failures) >= SIGNIN_LIMITS.failures[s.kind]) {
          await trx
            .updateTable('enrollment_signin_throttle')
            .set({ locked_until: new Date(now.getTime() + SIGNIN_LIMITS.lockMs).toISOString(), failures: 0, window_started_at: nowIso, updated_at: nowIso })
            .where('tenant_id', '=', tenantId)
            .where('key_hash', '=', keyHash)
            .execute();
        }
      }
    });
  }

  /** A successful sign-in forgets the failures of its user and device (never of an address others share). */
  async clear(db: Executor, tenantId: string, subjects: readonly ThrottleSubject[]): Promise<void> {
    if (subjects.length === 0) return;
    await db
      .deleteFrom('enrollment_signin_throttle')
      .where('tenant_id', '=', tenantId)
      .where('key_hash', 'in', subjects.map((s) => this.key(tenantId, s)))
      .execute();
  }
}

// ---- password sign-in -----------------------------------------------------------------------

export type PasswordSignInResult =
  | { ok: true; user: VerifiedUser }
  | { ok: false; reason: 'invalid' }
  | { ok: false; reason: 'locked'; retryAfterSeconds: number };

/** The one message for any failed sign-in, so nobody learns which accounts exist. */
export const SIGN_IN_FAILED = 'The account name or password is incorrect.';
export const SIGN_IN_LOCKED = 'Too many failed sign-in attempts. Wait a few minutes, then try again.';

export const USER_NAME_MAX = 256;
export const PASSWORD_MAX = 256;

/**
 * A directory sign-in with throttling: a locked subject is refused before the password is checked
 * (so a lock can't be probed for the right password), and every failure counts against the user
 * name, the client address and the device.
 */
export async function signInWithPassword(
  deps: { store: Store; throttle: SignInThrottle; clock: Clock },
  tenantId: string,
  input: { userName: string; password: string; address: string; deviceSerial?: string | null },
): Promise<PasswordSignInResult> {
  const userName = input.userName.trim();
  const subjects: ThrottleSubject[] = [
    { kind: 'user', value: userName.slice(0, USER_NAME_MAX) },
    { kind: 'address', value: input.address },
    ...(input.deviceSerial ? [{ kind: 'device' as const, value: input.deviceSerial }] : []),
  ];
  const locked = await deps.throttle.lockedUntil(deps.store.db, tenantId, subjects);
  if (locked) return { ok: false, reason: 'locked', retryAfterSeconds: Math.max(1, Math.ceil((locked.getTime() - deps.clock.now().getTime()) / 1000)) };
  const plausible = userName.length > 0 && userName.length <= USER_NAME_MAX && input.password.length > 0 && input.password.length <= PASSWORD_MAX;
  const user = plausible ? await verifyUserPassword(deps.store.db, tenantId, userName, input.password) : null;
  if (!user) {
    await deps.throttle.recordFailure(deps.store, tenantId, subjects);
    return { ok: false, reason: 'invalid' };
  }
  await deps.throttle.clear(deps.store.db, tenantId, subjects.filter((s) => s.kind !== 'address'));
  return { ok: true, user };
}
