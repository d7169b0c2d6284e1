import crypto from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { VerifiedUser } from '../../directory/passwords.js';
import { ENROLLMENT_REASONS } from '../../enrollment-policy/evaluation/reasons.js';
import type { GateDecision } from '../../enrollment-policy/gate/gate.js';
import type { TermsService } from '../../enrollment-policy/terms/service.js';
import type { UserChoice } from '../../enrollment-policy/apple-enrollment-types/rules.js';
import { GraphError } from '../../graph/errors.js';
import type { Clock } from '../../shared/time.js';
import type { Store } from '../../store/db.js';
import { appleDevicePaths } from '../device-urls.js';
import { ASPEN_CONFIG } from './machine-info-post.js';
import { ownerPage, platformPage, scopePage } from './user-initiated-pages.js';
import { browserDevice, parsePlatform, type PagePlatform } from './user-initiated-rules.js';
import type { PageDevice, UserInitiatedService } from './user-initiated-service.js';
import {
  clearedCookie,
  csrfMatches,
  messagePage,
  readCookie,
  registerFormParser,
  SESSION_TTL_MS,
  sendPage,
  sessionCookie,
  SIGN_IN_FAILED,
  SIGN_IN_LOCKED,
  signInPage,
  signInWithPassword,
  termsPage,
  USER_NAME_MAX,
  type SignInThrottle,
  type WebSession,
  type WebSessions,
} from './web-signin.js';

/**
 * The user-initiated enrollment page `{userEnrollmentPage}` = /enroll/apple/{tenantId} (-D §1.2,
 * §6, §7): server-rendered, no scripts. GET starts a session and shows the sign-in form (or first
 * asks whether a Mac-like browser is a Mac or an iPad); POST carries the steps, each naming itself
 * in `step`: signIn, chooseOwner, chooseScope, acceptTerms. When everything is settled the answer
 * is the signed profile (application/x-apple-aspen-config), which Safari offers to install.
 */

export const PAGE_SESSION_COOKIE = 'oe_enroll_session';
const SESSION_PURPOSE = 'userInitiated';
const ID = /^[A-Za-z0-9._~-]{1,128}$/;

interface PageContext extends PageDevice {
  answers: Partial<UserChoice>;
}

export interface UserInitiatedRoutesDeps {
  service: UserInitiatedService;
  store: Store;
  clock: Clock;
  sessions: WebSessions;
  throttle: SignInThrottle;
  terms: TermsService;
}

export function userInitiatedRoutes(deps: UserInitiatedRoutesDeps): FastifyPluginAsync {
  const { service, store, sessions, throttle, clock } = deps;
  const pathOf = (tenantId: string) => appleDevicePaths(tenantId).userEnrollmentPage;
  const setSession = (reply: FastifyReply, tenantId: string, token: string) => reply.header('set-cookie', sessionCookie(PAGE_SESSION_COOKIE, token, pathOf(tenantId), Math.floor(SESSION_TTL_MS / 1000)));
  const expiredPage = (reply: FastifyReply, tenantId: string) =>
    sendPage(reply.header('set-cookie', clearedCookie(PAGE_SESSION_COOKIE, pathOf(tenantId))), 400, messagePage('Your sign-in has expired', 'Open the enrollment page again to start over.'));
  const notFoundPage = (reply: FastifyReply) => sendPage(reply, 404, messagePage('Page not found', 'This enrollment page does not exist.'));

  async function userById(tenantId: string, userId: string | null): Promise<VerifiedUser | null> {
    if (!userId) return null;
    const row = await store.db
      .selectFrom('users')
      .select(['id', 'user_principal_name', 'display_name', 'account_enabled', 'force_change_password'])
      .where('tenant_id', '=', tenantId)
      .where('id', '=', userId)
      .executeTakeFirst();
    if (!row || row.account_enabled !== 1) return null;
    return { id: row.id, userPrincipalName: row.user_principal_name, displayName: row.display_name, forceChangePasswordNextSignIn: row.force_change_password === 1 };
  }

  function refusedPage(reply: FastifyReply, d: GateDecision) {
    const reason = d.reason ? ENROLLMENT_REASONS[d.reason] : undefined;
    const message = [d.message, d.detail, reason?.remediation].filter(Boolean).join(' ') || 'Enrollment is not allowed.';
    return sendPage(reply, 403, messagePage(reason ? `This device can't be enrolled: ${reason.title}` : "This device can't be enrolled", message, `Activity ID: ${d.activityId}`));
  }

  async function pendingTerms(tenantId: string, userId: string) {
    const groups = await store.db.selectFrom('group_members').select('group_id').where('tenant_id', '=', tenantId).where('member_id', '=', userId).execute();
    return (await deps.terms.termsForUser(store.db, tenantId, userId, groups.map((g) => g.group_id))).filter((t) => !t.accepted);
  }

  /** Everything after sign-in: the next question, the terms, the refusal, or the profile. */
  async function proceed(reply: FastifyReply, tenantId: string, session: WebSession<PageContext>, user: VerifiedUser): Promise<FastifyReply> {
    const action = pathOf(tenantId);
    const organization = (await service.organizationName(tenantId)) ?? 'Your organization';
    const outcome = await service.enroll(tenantId, user, session.context, session.context.answers);
    if (outcome.kind === 'ask') {
      const page = outcome.step === 'askOwner' ? ownerPage : scopePage;
      return sendPage(reply, 200, page({ action, csrfToken: session.csrfToken, organization }));
    }
    if (outcome.kind === 'refused') {
      if (outcome.decision.reason === 'termsNotAccepted') {
        const terms = await pendingTerms(tenantId, user.id);
        if (terms.length > 0) return sendPage(reply, 200, termsPage({ action, csrfToken: session.csrfToken, terms }));
      }
      return refusedPage(reply, outcome.decision);
    }
    await sessions.end(store.db, session);
    return reply
      .code(200)
      .header('set-cookie', clearedCookie(PAGE_SESSION_COOKIE, pathOf(tenantId)))
      .header('content-type', ASPEN_CONFIG)
      .header('content-disposition', 'attachment; filename="enroll.mobileconfig"')
      .header('cache-control', 'no-store')
      .send(outcome.signedProfile);
  }

  /** The page can't start (unknown tenant, no push certificate): a page that says so, or undefined. */
  async function unavailable(reply: FastifyReply, tenantId: string): Promise<FastifyReply | undefined> {
    if (!ID.test(tenantId) || !(await service.organizationName(tenantId))) return notFoundPage(reply);
    try {
      await service.requirePushCertificate(tenantId);
    } catch (err) {
      if (!(err instanceof GraphError)) throw err;
      // The certificate's own message speaks to admins; the person at the device gets this.
      return sendPage(reply, err.statusCode, messagePage("Devices can't be enrolled right now", "Your organization hasn't finished setting up Apple device enrollment. Contact your IT administrator."));
    }
    return undefined;
  }

  return async (app) => {
    registerFormParser(app);

    app.get<{ Params: { tenantId: string }; Querystring: { platform?: string } }>('/enroll/apple/:tenantId', async (req, reply) => {
      const { tenantId } = req.params;
      const stop = await unavailable(reply, tenantId);
      if (stop) return stop;
      const browser = browserDevice(req.headers['user-agent']);
      const asked = parsePlatform(req.query.platform);
      const platform: PagePlatform | null = asked ?? browser.platform;
      if (!platform) return sendPage(reply, 200, platformPage(pathOf(tenantId)));
      const context: PageContext = { platform, osVersion: platform === browser.platform ? browser.osVersion : null, activityId: crypto.randomUUID(), answers: {} };
      const { token, session } = await sessions.create<PageContext>(store.db, tenantId, SESSION_PURPOSE, context);
      setSession(reply, tenantId, token);
      const organization = (await service.organizationName(tenantId))!;
      return sendPage(
        reply,
        200,
        signInPage({
          action: pathOf(tenantId),
          csrfToken: session.csrfToken,
          heading: 'Enroll your device',
          intro: `Sign in with your ${organization} work or school account to enroll this ${platform === 'macOS' ? 'Mac' : 'device'}.`,
        }),
      );
    });

    app.post<{ Params: { tenantId: string }; Body: Record<string, string> }>('/enroll/apple/:tenantId', async (req: FastifyRequest<{ Params: { tenantId: string }; Body: Record<string, string> }>, reply) => {
      const { tenantId } = req.params;
      if (!ID.test(tenantId)) return notFoundPage(reply);
      const form = req.body;
      if (form === null || typeof form !== 'object' || Buffer.isBuffer(form)) return sendPage(reply, 415, messagePage('Unsupported request', 'Submit the form on the page.'));
      const session = await sessions.find<PageContext>(store.db, tenantId, SESSION_PURPOSE, readCookie(req.headers.cookie, PAGE_SESSION_COOKIE));
      if (!session || !csrfMatches(session, form.csrf)) return expiredPage(reply, tenantId);

      if (form.step === 'signIn') {
        const userName = (form.username ?? '').trim();
        const signIn = await signInWithPassword({ store, throttle, clock }, tenantId, { userName, password: form.password ?? '', address: req.ip });
        if (!signIn.ok) {
          const locked = signIn.reason === 'locked';
          if (locked) reply.header('retry-after', String(signIn.retryAfterSeconds));
          return sendPage(
            reply,
            locked ? 429 : 401,
            signInPage({ action: pathOf(tenantId), csrfToken: session.csrfToken, heading: 'Enroll your device', error: locked ? SIGN_IN_LOCKED : SIGN_IN_FAILED, userName: userName.slice(0, USER_NAME_MAX) }),
          );
        }
        setSession(reply, tenantId, await sessions.signedIn(store.db, session, signIn.user.id, { ...session.context, answers: {} }));
        return proceed(reply, tenantId, session, signIn.user);
      }

      const user = await userById(tenantId, session.userId);
      if (!user) return expiredPage(reply, tenantId);
      switch (form.step) {
        case 'chooseOwner':
          if (form.owner !== 'company' && form.owner !== 'personal') break;
          await sessions.saveContext(store.db, session, { ...session.context, answers: { owner: form.owner } });
          return proceed(reply, tenantId, session, user);
        case 'chooseScope':
          if (form.scope !== 'entireDevice' && form.scope !== 'workOnly') break;
          await sessions.saveContext(store.db, session, { ...session.context, answers: { ...session.context.answers, scope: form.scope } });
          return proceed(reply, tenantId, session, user);
        case 'acceptTerms': {
          if (form.accept !== 'yes') return proceed(reply, tenantId, session, user);
          const pending = await pendingTerms(tenantId, user.id);
          const shown = new Set((form.terms ?? '').split(',').filter(Boolean));
          // Only the versions the user read: a policy changed or added since then is shown again.
          if (pending.length > 0 && !pending.every((t) => shown.has(`${t.termsId}:${t.version}`))) {
            return sendPage(reply, 200, termsPage({ action: pathOf(tenantId), csrfToken: session.csrfToken, terms: pending, error: 'The terms and conditions changed. Read them again before you accept.' }));
          }
          await store.transaction(async (trx) => {
            for (const t of pending) await deps.terms.acceptTerms(trx, tenantId, user.id, t.termsId, t.version, { requestId: req.id });
          });
          return proceed(reply, tenantId, session, user);
        }
      }
      return expiredPage(reply, tenantId);
    });
  };
}
