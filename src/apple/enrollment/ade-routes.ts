import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { VerifiedUser } from '../../directory/passwords.js';
import type { TermsService, UserTerms } from '../../enrollment-policy/terms/service.js';
import { GraphError } from '../../graph/errors.js';
import type { Clock } from '../../shared/time.js';
import type { Store } from '../../store/db.js';
import { appleDevicePaths } from '../device-urls.js';
import { AdeRefusal, refusalOf, type AdeDeviceContext, type AdeEnrollmentService } from './ade-enrollment.js';
import { handleMachineInfoPost, machineInfoError, sendProfile, type MachineInfoEnrollment } from './machine-info-post.js';
import { MACHINE_INFO_LIMITS, MachineInfoError, verifyMachineInfoHeader, type MachineInfo, type MachineInfoAnchors } from './machine-info.js';
import { OidcSignInError, userForOidcClaims, type EnrollmentOidc, type OidcPending } from './web-signin-oidc.js';
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
 * The ADE device-facing routes:
 *   POST {ade(profileId)}                the profile's `url`: CMS-signed MachineInfo in, the signed
 *                                        enrollment profile out (HTTP Basic for legacy Setup Assistant authentication);
 *   GET  {ade(profileId)}/web            `configuration_web_url`: MachineInfo in x-apple-aspen-deviceinfo, the sign-in page;
 *   POST {ade(profileId)}/web            the sign-in and terms forms;
 *   GET  {ade(profileId)}/web/oidc       starts single sign-on;
 *   GET  /enroll/apple/ade/oidc/callback the identity provider's redirect (one URI to register for every tenant).
 * The profile is always served from this host with Content-Type application/x-apple-aspen-config.
 */

export const ADE_SESSION_COOKIE = 'oe_ade_session';
export const ADE_COOKIE_PATH = '/enroll/apple/ade/';
export const ADE_OIDC_CALLBACK_PATH = '/enroll/apple/ade/oidc/callback';
const SESSION_PURPOSE = 'adeWeb';

interface AdeWebContext {
  urlProfileId: string;
  machine: MachineInfo;
  oidc?: OidcPending;
}

export interface AdeRoutesDeps {
  service: AdeEnrollmentService;
  anchors: MachineInfoAnchors;
  store: Store;
  clock: Clock;
  logger: Logger;
  sessions: WebSessions;
  throttle: SignInThrottle;
  terms: TermsService;
  oidc: { client: EnrollmentOidc; tenantClaim: string } | undefined;
  publicUrl: string | undefined;
}

const ID = /^[A-Za-z0-9._~-]{1,128}$/;

interface Params {
  tenantId: string;
  profileId: string;
}

export function adeEnrollmentRoutes(deps: AdeRoutesDeps): FastifyPluginAsync {
  const { service, store, sessions, throttle, clock } = deps;

  const pathsOf = (p: Params) => {
    const url = appleDevicePaths(p.tenantId).ade(p.profileId);
    return { url, web: `${url}/web`, oidcStart: `${url}/web/oidc` };
  };
  const baseUrl = (req: FastifyRequest) => deps.publicUrl ?? `${req.protocol}://${req.host}`;
  const setSession = (reply: FastifyReply, token: string) => reply.header('set-cookie', sessionCookie(ADE_SESSION_COOKIE, token, ADE_COOKIE_PATH, Math.floor(SESSION_TTL_MS / 1000)));
  const clearSession = (reply: FastifyReply) => reply.header('set-cookie', clearedCookie(ADE_SESSION_COOKIE, ADE_COOKIE_PATH));

  const refusedPage = (reply: FastifyReply, r: AdeRefusal | GraphError) => {
    const activityId = r instanceof AdeRefusal ? r.activityId : undefined;
    return sendPage(reply, r.statusCode, messagePage("This device can't be enrolled", r.message, activityId ? `Activity ID: ${activityId}` : undefined));
  };
  const expiredPage = (reply: FastifyReply) =>
    sendPage(clearSession(reply), 400, messagePage('Your sign-in has expired', 'Go back and start enrollment again to get a new sign-in page.'));

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

  async function pendingTerms(tenantId: string, userId: string, groupIds: readonly string[]): Promise<UserTerms[]> {
    return (await deps.terms.termsForUser(store.db, tenantId, userId, groupIds)).filter((t) => !t.accepted);
  }

  /** The gate, then the profile, a terms page (web only) or the refusal. */
  async function finishWeb(reply: FastifyReply, p: Params, session: WebSession<AdeWebContext>, ctx: AdeDeviceContext, user: VerifiedUser | null): Promise<FastifyReply> {
    let result;
    try {
      result = await service.enroll(ctx, user);
    } catch (err) {
      if (err instanceof GraphError) return refusedPage(reply, err);
      throw err;
    }
    if (result.kind === 'profile') {
      await sessions.end(store.db, session);
      return sendProfile(clearSession(reply), result.signedProfile);
    }
    const d = result.decision;
    if (d.reason === 'termsNotAccepted' && user && d.facts.user) {
      const terms = await pendingTerms(ctx.tenantId, user.id, d.facts.user.groupIds);
      if (terms.length > 0) return sendPage(reply, 200, termsPage({ action: pathsOf(p).web, csrfToken: session.csrfToken, terms }));
    }
    return refusedPage(reply, refusalOf(d));
  }

  async function signInForm(reply: FastifyReply, p: Params, session: WebSession<AdeWebContext>, ctx: AdeDeviceContext, status: number, extra: { error?: string; userName?: string } = {}) {
    return sendPage(
      reply,
      status,
      signInPage({
        action: pathsOf(p).web,
        csrfToken: session.csrfToken,
        heading: 'Sign in to set up your device',
        intro: `${ctx.profile.displayName}: sign in with your work or school account to enroll this ${ctx.machine.platform === 'iOS' ? 'device' : 'Mac'}.`,
        ...(deps.oidc ? { oidcHref: pathsOf(p).oidcStart } : {}),
        ...extra,
      }),
    );
  }

  /** The session of a web request and the device context re-derived from it (state may have changed since the page was shown). */
  async function webState(req: FastifyRequest, reply: FastifyReply, p: Params): Promise<{ session: WebSession<AdeWebContext>; ctx: AdeDeviceContext } | FastifyReply> {
    const session = await sessions.find<AdeWebContext>(store.db, p.tenantId, SESSION_PURPOSE, readCookie(req.headers.cookie, ADE_SESSION_COOKIE));
    if (!session || session.context.urlProfileId !== p.profileId) return expiredPage(reply);
    try {
      return { session, ctx: await service.resolve(p.tenantId, p.profileId, session.context.machine) };
    } catch (err) {
      if (err instanceof AdeRefusal || err instanceof GraphError) return refusedPage(reply, err);
      throw err;
    }
  }

  const machineInfoEnrollment: MachineInfoEnrollment<AdeDeviceContext> = {
    resolve: (tenantId, profileId, machine) => service.resolve(tenantId, profileId, machine),
    needsUser: (ctx) => service.needsUser(ctx),
    enroll: (ctx, user) => service.enroll(ctx, user),
    displayName: (ctx) => ctx.profile.displayName,
  };

  return async (app: FastifyInstance) => {
    // Devices send the signed MachineInfo as application/pkcs7-signature; nothing bigger than the limit is read.
    app.addContentTypeParser(['application/pkcs7-signature', 'application/octet-stream'], { parseAs: 'buffer', bodyLimit: MACHINE_INFO_LIMITS.signedBytes }, (_req, body, done) => done(null, body));
    registerFormParser(app);

    app.post<{ Params: Params }>('/enroll/apple/ade/:tenantId/:profileId', async (req, reply) => {
      const p = req.params;
      if (!ID.test(p.tenantId) || !ID.test(p.profileId)) throw new GraphError(404, 'ResourceNotFound', 'This enrollment URL does not exist.');
      return handleMachineInfoPost(req, reply, machineInfoEnrollment, deps);
    });

    app.get<{ Params: Params }>('/enroll/apple/ade/:tenantId/:profileId/web', async (req, reply) => {
      const p = req.params;
      if (!ID.test(p.tenantId) || !ID.test(p.profileId)) return sendPage(reply, 404, messagePage('Page not found', 'This enrollment page does not exist.'));
      let machine: MachineInfo;
      try {
        machine = verifyMachineInfoHeader(req.headers['x-apple-aspen-deviceinfo'], deps.anchors).info;
      } catch (err) {
        if (!(err instanceof MachineInfoError)) throw err;
        const e = machineInfoError(err);
        const text = err.message.includes('header is missing') ? 'Open this page from Setup Assistant on the device you are enrolling.' : e.message;
        return sendPage(reply, e.statusCode, messagePage("This device can't be enrolled", text));
      }
      let ctx: AdeDeviceContext;
      try {
        ctx = await service.resolve(p.tenantId, p.profileId, machine);
      } catch (err) {
        if (err instanceof AdeRefusal || err instanceof GraphError) return refusedPage(reply, err);
        throw err;
      }
      const { token, session } = await sessions.create<AdeWebContext>(store.db, p.tenantId, SESSION_PURPOSE, { urlProfileId: p.profileId, machine });
      setSession(reply, token);
      if (!service.needsUser(ctx)) return finishWeb(reply, p, session, ctx, null);
      return signInForm(reply, p, session, ctx, 200);
    });

    app.post<{ Params: Params; Body: Record<string, string> }>('/enroll/apple/ade/:tenantId/:profileId/web', async (req, reply) => {
      const p = req.params;
      if (!ID.test(p.tenantId) || !ID.test(p.profileId)) return sendPage(reply, 404, messagePage('Page not found', 'This enrollment page does not exist.'));
      const form = req.body;
      if (form === null || typeof form !== 'object' || Buffer.isBuffer(form)) return sendPage(reply, 415, messagePage('Unsupported request', 'Submit the form on the page.'));
      const state = await webState(req, reply, p);
      if (!('session' in state)) return state;
      const { session, ctx } = state;
      if (!csrfMatches(session, form.csrf)) return expiredPage(reply);
      if (!service.needsUser(ctx)) return finishWeb(reply, p, session, ctx, null);

      if (form.step === 'signIn') {
        const userName = (form.username ?? '').trim();
        const signIn = await signInWithPassword({ store, throttle, clock }, p.tenantId, { userName, password: form.password ?? '', address: req.ip, deviceSerial: ctx.machine.serialNumber });
        if (!signIn.ok) {
          const locked = signIn.reason === 'locked';
          if (locked) reply.header('retry-after', String(signIn.retryAfterSeconds));
          return signInForm(reply, p, session, ctx, locked ? 429 : 401, { error: locked ? SIGN_IN_LOCKED : SIGN_IN_FAILED, userName: userName.slice(0, USER_NAME_MAX) });
        }
        setSession(reply, await sessions.signedIn(store.db, session, signIn.user.id, session.context));
        return finishWeb(reply, p, session, ctx, signIn.user);
      }

      if (form.step === 'acceptTerms') {
        const user = await userById(p.tenantId, session.userId);
        if (!user) return expiredPage(reply);
        if (form.accept !== 'yes') return finishWeb(reply, p, session, ctx, user);
        const request = service.gateRequest(ctx, user);
        const facts = await deps.service.gateFacts(request);
        const pending = await pendingTerms(p.tenantId, user.id, facts.user?.groupIds ?? []);
        const shown = new Set((form.terms ?? '').split(',').filter(Boolean));
        // Only the versions the user read: a policy changed or added since then is shown again.
        if (pending.length === 0 || !pending.every((t) => shown.has(`${t.termsId}:${t.version}`))) {
          if (pending.length === 0) return finishWeb(reply, p, session, ctx, user);
          return sendPage(reply, 200, termsPage({ action: pathsOf(p).web, csrfToken: session.csrfToken, terms: pending, error: 'The terms and conditions changed. Read them again before you accept.' }));
        }
        await store.transaction(async (trx) => {
          for (const t of pending) await deps.terms.acceptTerms(trx, p.tenantId, user.id, t.termsId, t.version, { requestId: req.id });
        });
        return finishWeb(reply, p, session, ctx, user);
      }
      return expiredPage(reply);
    });

    app.get<{ Params: Params }>('/enroll/apple/ade/:tenantId/:profileId/web/oidc', async (req, reply) => {
      const p = req.params;
      if (!deps.oidc || !ID.test(p.tenantId) || !ID.test(p.profileId)) return sendPage(reply, 404, messagePage('Page not found', 'Single sign-on is not set up on this server.'));
      const state = await webState(req, reply, p);
      if (!('session' in state)) return state;
      const { session, ctx } = state;
      if (!service.needsUser(ctx)) return finishWeb(reply, p, session, ctx, null);
      try {
        const { url, pending } = await deps.oidc.client.begin(`${baseUrl(req)}${ADE_OIDC_CALLBACK_PATH}`);
        await sessions.saveContext(store.db, session, { ...session.context, oidc: pending });
        return reply.code(302).header('location', url).header('cache-control', 'no-store').send();
      } catch (err) {
        if (!(err instanceof OidcSignInError)) throw err;
        deps.logger.warn({ err: err.message }, 'enrollment single sign-on could not start');
        return sendPage(reply, 503, messagePage('Single sign-on is unavailable', 'Your organization’s sign-in service could not be reached. Try again, or sign in with your password.'));
      }
    });

    app.get<{ Querystring: Record<string, string | string[] | undefined> }>(ADE_OIDC_CALLBACK_PATH, async (req, reply) => {
      if (!deps.oidc) return sendPage(reply, 404, messagePage('Page not found', 'Single sign-on is not set up on this server.'));
      const session = await sessions.find<AdeWebContext>(store.db, null, SESSION_PURPOSE, readCookie(req.headers.cookie, ADE_SESSION_COOKIE));
      const pending = session?.context.oidc;
      if (!session || !pending) return expiredPage(reply);
      const q = req.query;
      const one = (v: string | string[] | undefined) => (typeof v === 'string' ? v : undefined);
      // The pending request is single-use, whatever the answer.
      const { oidc: _used, ...rest } = session.context;
      await sessions.saveContext(store.db, session, rest);
      let user: VerifiedUser | null;
      try {
        const claims = await deps.oidc.client.complete({ code: one(q.code), state: one(q.state), error: one(q.error) }, pending, `${baseUrl(req)}${ADE_OIDC_CALLBACK_PATH}`);
        user = await userForOidcClaims(store.db, session.tenantId, claims, deps.oidc.tenantClaim);
      } catch (err) {
        if (!(err instanceof OidcSignInError)) throw err;
        deps.logger.info({ reason: err.message }, 'enrollment single sign-on refused');
        const status = err.kind === 'unavailable' ? 503 : 403;
        return sendPage(reply, status, messagePage('Sign-in failed', err.kind === 'unavailable' ? 'Your organization’s sign-in service could not be reached. Try again.' : 'You could not be signed in. Start enrollment again.'));
      }
      if (!user) return sendPage(reply, 403, messagePage('Sign-in failed', 'Your account can’t enroll devices for this organization. Contact your IT administrator.'));
      const p: Params = { tenantId: session.tenantId, profileId: rest.urlProfileId };
      let ctx: AdeDeviceContext;
      try {
        ctx = await service.resolve(p.tenantId, p.profileId, rest.machine);
      } catch (err) {
        if (err instanceof AdeRefusal || err instanceof GraphError) return refusedPage(reply, err);
        throw err;
      }
      setSession(reply, await sessions.signedIn(store.db, session, user.id, rest));
      return finishWeb(reply, p, session, ctx, user);
    });
  };
}
